// Package duckdb is Sluice's embedded log store: a store.Store in one data
// directory, with logs in Parquet segment files that Sluice writes itself
// (github.com/parquet-go/parquet-go) and queries through embedded DuckDB
// (github.com/duckdb/duckdb-go/v2), which also holds the catalog. The
// query language comes from server/query (parser, compiler to SQL, SQL
// sandbox); this package lays out rows, ingests and runs queries.
//
// # Use
//
//	s, err := duckdb.Open(duckdb.Config{DataDir: dir}, duckdb.Settings{Logger: l, Registerer: reg})
//	defer s.Close() // waits for queued writes, checkpoints
//
// *Store implements store.Store, plus EnforceRetention (run hourly by the
// store itself; storetest calls it).
//
// # Layout
//
// A catalog table sluice_logstores maps (project, logstore) to an id and
// keeps ttl, index and column list. Logs live in Parquet files, segments,
// under DataDir/segments/ls<id>/<n>.parquet; each holds logs of one UTC
// day of the log time and is listed in the catalog table sluice_segments
// (day, rows, __time__ range, columns). Queries read the segments whose
// day and time range overlap [from, to) with DuckDB's read_parquet
// (union_by_name), so time pruning is by construction, and retention
// removes whole files (never row deletes). Columns:
//
//	__time__ BIGINT, __time_ns__ INTEGER, __topic__, __source__ VARCHAR,
//	__tags__ VARCHAR (JSON object), __receive_time__ BIGINT,
//	__contents__ BLOB (all keys/values, original order and bytes),
//	__line__ VARCHAR (full-text tokens), then one typed column per
//	field-indexed key named after it: text/json VARCHAR, long BIGINT,
//	double DOUBLE (NULL when absent or unparsable).
//
// Strings are dictionary-encoded (falling back to plain once a column
// chunk's dictionary passes 2 MiB, i.e. for unique values), everything is
// zstd-compressed, and row groups are 65,536 rows with min/max statistics,
// so DuckDB scans a file's row groups in parallel and skips them by time.
//
// Full text: __line__ is query.Tokenizer.AppendValue over the values the
// line index covers (include_keys/exclude_keys), lowercased unless
// caseSensitive; a term is contains(__line__, ' tok '). An index without
// a line section has no full-text column; a logstore without any index
// gets the default tokens so it is still searchable.
//
// Index changes do not rewrite segments: each records the columns it was
// written with, and a query reads a column missing from a segment as NULL
// and casts one written with another type (TRY_CAST: NULL where a value
// does not convert). Existing rows are not backfilled; __contents__ still
// has every value. Writes accepted under an older index are reshaped to
// the current one before they are written.
//
// Data directories of earlier versions kept logs in DuckDB tables, one per
// logstore per day (ls<id>_<yyyymmdd>); those are still read (UNION ALL BY
// NAME with the segments), altered on index changes and dropped by
// retention, but nothing new is written to them.
//
// Why Parquet segments written by Sluice rather than DuckDB tables: with
// DuckDB's Appender, ingestion cost 13-34 µs of CPU per line (1.3 GB per
// 10M nginx lines), ~93% of it inside DuckDB compressing row groups and
// copying strings at commit; the goal is 4 µs per line (500k lines/s on 2
// cores). parquet-go (github.com/parquet-go/parquet-go) writes the same
// columns from Go for ~1 µs per line, into files a tenth the size, and
// DuckDB scans them about as fast as its own tables (figures below).
// Reading them needs file access, which the database otherwise refuses:
// allowed_directories is set to the segment directory before
// enable_external_access=false and lock_configuration=true, so user SQL,
// which the sandbox already keeps from naming files, could at most read
// segments even if it escaped.
//
// Retention counts from a log's own time (__time__), because partitions
// are by log day: that keeps time pruning exact and makes expiry a file
// removal. The Log Service counts from arrival instead; the difference
// shows only for logs written with old timestamps. A day is kept while it
// is within the last TTLDays days (UTC); older days are hidden from
// queries at once and removed by EnforceRetention (hourly). Logs whose
// time is already past the ttl when written are not stored: they are
// counted in sluice_store_expired_logs_dropped_total and logged.
//
// # Ingestion and durability
//
// Write converts groups to columns on the caller's goroutine (nothing
// keeps the caller's strings; at most GOMAXPROCS writes convert at once,
// so many concurrent requests cannot starve the loader) and appends one
// record (logstore id, receive time, the groups re-encoded as a
// LogGroupList protobuf, CRC32C) to the store's own write-ahead log in
// DataDir/wal (wal.go). One flusher goroutine writes everything appended
// meanwhile with one write and one fsync (group commit); Write returns
// once its record is fsynced. A 200 from PutLogs therefore means durable:
// TestDurabilityKill9 and TestWALReplayAfterKill SIGKILL a writing process
// and find every acknowledged row after restart, exactly once.
//
// That is request durability, the default. With SyncInterval > 0 (async
// durability, sluice-server --durability=async, as Elasticsearch's
// translog) Write returns once its record is written to the WAL file: it
// survives a crash or kill of the process (TestWALReplayAfterKill/async
// kills a child whose WAL was never fsynced), not a power loss; a syncer
// goroutine fsyncs the WAL every SyncInterval, apart from the flusher so
// writes do not wait for it. Why both: each fsync costs 0.4-1 ms on the
// benchmark VM's virtio disk, and a write of a 4 KiB LogGroup (~13 lines)
// must wait for one. With W concurrent writers, group commit puts about
// W/2 writes in each fsync, so request durability caps 32 writers at
// about 250k lines/s of 4 KiB groups however little CPU a line takes;
// async reaches 570k (docs/benchmarks.md). Overlapping two fsyncs did
// not help there: smaller batches meant more fsyncs, each a few VM exits.
//
// The acknowledged columns wait in memory for the loader (the writer
// goroutine), which writes them as one segment per logstore, day and
// schema once LoadRows (122,880) rows are queued, the oldest has waited
// FlushInterval (5s), a query asks, or the queue is half full. Row groups
// of a segment are encoded in parallel. A segment is written under a
// temporary name, fsynced and renamed; then one DuckDB transaction
// records it in sluice_segments together with the WAL position loaded so
// far (table sluice_wal). Open replays WAL records after that position,
// removes segment files the catalog does not list (a load or merge that
// did not commit), and WAL segments (64 MiB) wholly below it are deleted.
// Column buffers of loaded writes are pooled for the next writes.
//
// Compaction: a logstore receiving little gets a small segment per load.
// Once a day has compactMin (8) segments under compactBelow (65,536)
// rows with the same columns, the writer goroutine merges them into one
// (DuckDB COPY ... TO parquet), swaps them in the catalog in one
// transaction, and removes the old files after QueryTimeout (a running
// query may still read them); files left over by a crash are removed at
// Open.
//
// Visibility: a query first makes its logstore's acknowledged writes
// visible (waitLoaded: if any are pending it asks the loader for a load and
// waits for it), so read-after-write holds for Search and Histogram.
// Under constant ingestion, frequent queries make loads smaller (each
// query of a logstore with pending writes triggers one); compaction merges
// what that leaves small.
//
// Bounds: QueueBytes (128 MiB of converted rows, roughly) bounds
// acknowledged but unloaded data, in memory and in the WAL; beyond it
// Write fails fast with store.ErrOverloaded (retryable 503). If a
// multi-write load fails, each write is loaded alone; a write that still
// fails (or whose logstore was dropped before it was loaded) was already
// acknowledged, so it is counted in sluice_store_load_failed_logs_total
// and logged — never silently lost. A failed WAL write or fsync makes
// every later Write fail (the file may hold a partial batch).
// sluice_store_wal_sync_seconds and sluice_store_wal_writes_total show
// the fsyncs and how many writes each covers. DDL
// (EnsureLogstore, drops, retention) and compaction run on the writer
// goroutine between loads.
//
// # Shards and cursors
//
// A logstore has shardCount shards; each is the ordered sequence of the
// log groups written to it (WriteShard; PutLogs picks the shard by hash
// key or round robin), kept by receive time for the TTL, read by cursor
// with Pull (PullLogs, BatchGetLogs, the consumer library). A cursor is a
// group's position in its shard. The sequences live in shard logs
// (server/store/shardlog) under DataDir/shards: per shard, files of the
// WAL's own record bytes for the writes to that shard.
//
// How cursors map onto storage, and why: the segments cannot serve
// cursors (rows are regrouped by log day and schema, loaded seconds
// later, compacted, and a log past the TTL is not stored at all), and
// the WAL cannot either (every logstore interleaved, deleted once loaded,
// so reading one shard means scanning everything and keeping the WAL for
// the longest TTL). So a WAL record (one Write) carries its shard, and
// the WAL flusher, once a batch is durable and before acknowledging it,
// appends each record unchanged to its shard's log (one write(2) per
// shard per batch, no re-encoding): PullLogs sees a write as soon as
// PutLogs returns. The WAL stays the source of truth: the shard logs are
// fsynced before the loader records a WAL position, and at Open each
// shard is cut back to that position and the WAL replay appends the rest
// again in WAL order, so every cursor reads the same group after a
// kill -9 as before (TestShardsSurviveKill9 kills a writer at random
// points over several restarts). Retention removes shard files by
// receive time; DropLogstore removes the logstore's shards.
//
// The cost: ingestion writes each group's bytes twice more than before
// (WAL, shard log, then the segment), raw: on disk a shard log is about
// the raw protobuf size (~350 B per 10-key nginx line, against 2-12 in
// segments) for the TTL. Figures in "Figures" below.
//
// # Queries
//
// Search returns pages in time order in two steps (page.go): the keys
// (time, source, row number) of the best offset+line matches, visiting
// segments newest (or oldest) first and stopping once no unread segment
// can hold a better row, then the page's rows by row number — only the
// rows shown are decoded. A search's keys are kept for a minute, so its
// next pages (the console asks for ten of 100) skip the first step. SQL runs as server/query's sandboxed
// statement over WITH log AS (SELECT * FROM <segments> WHERE <time,
// topic, search>). The database runs with enable_external_access=false
// (but for the segment directory) and lock_configuration=true (set at
// Open, database-wide) as defense in depth behind the sandbox. Every value is returned as a string; SQL NULL
// is "null". DuckDB's errors quote the statement; that is the store's SQL,
// so an error is returned with DuckDB's message only, placed (a
// *query.Error, "SQL error at <byte>") in the user's query when DuckDB
// points into the user's part of the statement.
//
// Query bounds (bounds.go, memguard.go; TestQueryResourceLimits,
// TestMemoryGuard, TestTimeoutStopsDuckDB). At most MaxQueries queries
// run at once, at most MaxQueriesPerProject of one project; a query waits
// up to QueueTimeout for a slot (at most MaxQueuedQueries wait), then
// fails with store.ErrOverloaded (503 with Retry-After). A query runs on
// its caller's goroutine under QueryTimeout: at the deadline the driver
// interrupts DuckDB, and Search returns only once it has stopped, so
// nothing runs on after the answer. Before DuckDB plans anything the
// query text is held to QueryLimits (length, CTEs, subqueries, joins,
// nesting: DuckDB's planner is neither interruptible nor under
// memory_limit), and server/query's sandbox caps the values one function
// call may build (query.MaxBuiltString, 16 KiB; statically from literals,
// at run time for repeat of a computed value, replace and
// regexp_replace), which also keeps one vector's uninterruptible work to
// well under a second. DuckDB's memory_limit (MemoryLimit, 768MB) governs
// its buffer manager; the memory guard caps everything DuckDB allocates
// (MemoryHardLimit, a quarter more), the vectors memory_limit does not
// see included: an allocation past it fails its query. Spilling is capped
// at TempDirLimit. Every limit hit is store.ErrQueryLimit naming the limit
// (400 QueryLimitExceeded). DuckDB's memory is one pool with no account
// per query, so a query that ran out of it while another project's query
// ran alongside runs again once those have finished, every new query held
// back meanwhile (the lane, at most once a minute per project): too big
// even then, it gets the 400, else its answer; if it cannot run alone
// within QueueTimeout it is store.ErrOverloaded (503, retried)
// (TestMemoryShared, e2e/abuse TestMemoryPressure). DuckDB's messages reach the client without
// the statement excerpt (the store's SQL, with file paths), and errors
// that are not the query's are logged, not shown. An SQL result over
// MaxResultRows (100,000) or MaxResultBytes (16 MiB) fails asking for a
// LIMIT or an aggregate. select * shows __time__, __source__, __topic__
// and the field-indexed keys; storage columns stay internal.
//
// # Figures
//
// Shared 2-core box, 2026-11-23, load average ~1.5-2 (figures move by up
// to 20% between runs; CPU per line is the steadier one). Synthetic nginx
// lines (protocoltest: 1,000 distinct lines cycled), so dictionary
// encoding and zstd do better than on real traffic.
//
// Ingestion, BenchmarkWrite (10 keys, 4 of them field-indexed, CPU per line
// counting the loader's work until every line is in a segment), 32
// concurrent writers: 64 KiB groups 606-653k lines/s (2.1-2.3 µs CPU per
// line), 1 MiB 679-692k (2.4 µs), 32 x 1 MiB per write 426-578k
// (3.2-4.3 µs; 32 MiB writes fill the queue and are retried), 4 KiB
// 243-278k (4.3-4.6 µs). 4 KiB groups are bound by per-write work and
// by the fsync every write waits for: 64 writers give 380-405k
// (3.1-3.3 µs). With the DuckDB Appender the same benchmark (8 writers)
// gave 45-72k lines/s at 17.7-33.6 µs per line.
//
// Search over 10M lines (20 days, 100 segments, 122 MB on disk against
// 1.3 GB in DuckDB tables; BenchmarkSearch with SLUICE_BENCH_10M=1, wall
// per query, CPU over all threads): full text without match (full scan)
// 210 ms (363 CPU-ms), rare match 40 ms, common term 39 ms (newest day
// only), status:404 32 ms, "* | select status, count(*) group by status"
// 100 ms (186 CPU-ms), a filtered group-by 175 ms, a histogram 115 ms. On
// DuckDB tables they were 369 ms and 107 ms for the full scan and the
// group-by.
//
// # Several nodes (Config.Shared)
//
// With Config.Shared the store is one node of several (sluice-server
// --storage s3://... --meta postgres://...): segments live in an
// S3-compatible bucket (Shared.Objects, server/objstore) and the catalog
// of logstores and segments in PostgreSQL (Shared.Catalog,
// pgcatalog), so every node sees every segment and any node serves any
// request; a node added or removed moves no data. This is how Quickwit,
// Loki, OpenObserve and Parseable scale: immutable columnar files on
// object storage, metadata in a database, stateless nodes.
//
// Durability: a write is acknowledged only once it is durable beyond the
// node. The choice here is a group commit to object storage rather than
// replication between nodes: writes arriving within CommitInterval
// (200ms) are written as one Parquet segment per logstore and day,
// uploaded (in parallel), and recorded in the catalog in one PostgreSQL
// transaction; then all of them are acknowledged at once. There is no
// local WAL in this mode, so a node keeps nothing another needs: killed
// with kill -9 it loses only writes it had not acknowledged (their clients
// retry), and since a segment exists for queries only once its catalog
// row is committed, nothing is half visible — an upload whose node died
// before the commit is an object no row names, removed by the orphan
// sweep after OrphanAge. Replication (as Quickwit's ingest v2 or Loki's
// ingesters do) would acknowledge sooner but needs membership, a
// replication protocol and recovery of a dead node's replicas; the group
// commit needs nothing but the two shared services, which a team running
// several nodes runs anyway, and costs latency, not throughput: ack
// latency is the wait for the commit (up to CommitInterval, less once
// LoadRows rows wait) plus one upload and one transaction (figures in
// docs/benchmarks.md). A write is also visible on every node once
// acknowledged: no load step follows.
//
// Sent twice: a node killed after its commit but before its answer
// leaves the client without an acknowledgement, so the client sends the
// group again, to this node once restarted or to another. Groups carry a
// __pack_id__ tag (the agent's and the SDK producer's: a per-run prefix
// and a sequence number); the commit records each group's pack key (the
// id and a 64-bit xxhash of the group's encoding) in the catalog, in the
// same transaction as its segments. Before a group commit, the node looks
// up its writes' keys: a write whose every group is recorded (or is in an
// earlier write of the same commit) is acknowledged with the commit and
// not stored again (counted in sluice_store_resent_groups_total and
// logged). Two nodes committing the same group at once both look it up
// before either commits: the key's primary key lets one transaction
// commit, and the other fails as a whole with a retryable error (503),
// whose clients send again. So every acknowledged group is stored exactly
// once, while its client re-sends it within ResendWindow (1h; older keys
// are removed by the maintenance node). The digest makes a reused id on
// different content (a client that restarted its numbering) a new group:
// stored, never dropped. A write with one new group is stored whole, so a
// client that regroups what it sends again gets at-least-once; so does a
// group without __pack_id__. The embedded store does not look up pack
// keys: a crash between its WAL sync and the answer stores the re-sent
// group twice.
//
// A query lists from the catalog only the segments whose day and
// __time__ range meet its range (the catalog's min/max prune before any
// file is touched), then drops those whose statistics show that no log
// of theirs can match its search (stats.go): each segment's catalog row
// carries, per topic, source, tag and text/long/double field, whether any
// log has a value, up to 32 distinct values and the numbers' range, and
// query.Pruner tests the search's key conditions against them with the
// store's own matching (tokens, case, wildcards; `or` when every branch
// rules the segment out; `not` and full text never prune). So `host:web-7`
// or `status:503` over a day of many hosts' segments fetches only the
// segments that hold them (sluice_store_query_segments_total counts
// searched and pruned). A compacted segment's statistics are the union
// of its inputs', so it is skipped only for values none of them held; a
// key with more than 32 values in a segment never skips it. It then fetches those its local cache lacks, in parallel
// (server/objstore: a bounded LRU cache of whole files, pinned while a
// query reads them), and DuckDB reads the local copies. A search page
// (page.go) fetches the segments of each batch of sources as step 1 comes
// to it, so a newest-first page stops fetching once its keys are certain;
// step 2 fetches the page's own sources again (keys kept from an earlier
// search may name segments the cache has since evicted); SQL and
// histograms fetch every segment of their range.
// Objects are immutable, so cached copies never need validation.
//
// Maintenance runs on one node at a time, the holder of a lease in
// PostgreSQL (renewed every MaintenanceInterval, taken over when it
// expires): compaction merges a day's small segments (up to 256 at a
// time, since every node adds a segment per commit) by fetching them,
// DuckDB COPY and one upload, then swaps them in one catalog transaction
// that fails if another node removed an input meanwhile; retention
// removes whole days from the catalog; replaced and expired segments
// become graves in the catalog, whose objects are deleted once due
// (GraveDelay, 1 min, plus twice the longest QueryTimeout of the nodes
// registered in the catalog: a query on any node binds its segment list
// when it starts, and nodes may run with different timeouts). Logstores created, changed or dropped on one node
// reach the others through the catalog (refreshed every
// MaintenanceInterval, and at once when a node meets a logstore it does
// not know, or a query finds none of its segments).
//
// Shards (cursors, PullLogs, consumer groups, context logs) work in this
// mode too, from a shard log in the same two places: each commit also
// uploads one object per logstore with every shard's new groups, and
// records per shard a chunk whose cursors PostgreSQL assigns in the
// commit's transaction (sharedshards.go; the design is in pgcatalog's
// documentation). Cursors are the same on every node and survive any
// node's restart or death. The maintenance node merges a logstore's shard
// objects of each past ShardMergeAge window (10 minutes) into one
// (shardmerge.go), and each shard's chunk rows of the window into one per
// 256 KiB or so, never changing a cursor: a merged row frames every commit's
// chunk with its group count and receive time, so PullLogs skips to a
// cursor inside it without decompressing what is before, and GetCursor
// and GetCursorTime answer as before the merge.
//
// Not in this mode: --durability (there is no WAL); legacy DuckDB
// day tables; a write to a logstore dropped and re-created under the same
// name on another node within one refresh fails (404) once.
//
// # Limits (not done)
//
// Chinese segmentation (chn) and key aliases are not supported (tags are
// columns in SQL only when indexed, "__tag__:name", as in the Log
// Service); a client sending logs over thousands of distinct days creates
// thousands of segments (the API should enforce the Log Service's time
// window). Compaction merges only segments with the same columns; large
// segments are never merged, so a day of steady high-rate ingestion stays
// at one segment per load (2-4 per 5 s at 100k lines/s). Memory: column
// sets are pooled per store and can hold a large write's buffers until
// the garbage collector clears the pool.
package duckdb
