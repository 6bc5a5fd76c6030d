// Package duckdb is Sluice's embedded log store: a store.Store on one
// DuckDB database file (github.com/duckdb/duckdb-go/v2) in a data
// directory. The query language comes from server/query (parser, compiler
// to SQL, SQL sandbox); this package lays out rows, ingests and runs
// queries.
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
// every later Write fail (the file may hold a partial batch). DDL
// (EnsureLogstore, drops, retention) and compaction run on the writer
// goroutine between loads.
//
// # Queries
//
// Search pages through day partitions newest (or oldest) first and stops
// once offset+line rows were found. SQL runs as server/query's sandboxed
// statement over WITH log AS (SELECT * FROM <segments> WHERE <time,
// topic, search>). The database runs with enable_external_access=false
// (but for the segment directory) and lock_configuration=true (set at
// Open, database-wide) as defense in depth behind the sandbox. Every value is returned as a string; SQL NULL
// is "null".
//
// At most MaxQueries queries run at once; a query waits up to a second
// for a slot, then fails with store.ErrOverloaded. A query whose context
// ends returns ctx.Err() at once; DuckDB is interrupted and the query
// keeps its slot until it has stopped.
//
// Resource limits (TestQueryResourceLimits): DuckDB gets memory_limit
// MemoryLimit (default 2GB rather than DuckDB's 80% of RAM); a query
// running longer than QueryTimeout (60s) is stopped with a 400 naming the
// limit; an SQL result over MaxResultRows (100,000) or MaxResultBytes
// (64 MiB) fails with a 400 asking for a LIMIT or aggregate. DuckDB cannot
// interrupt one huge function call and builds constant ones already while
// planning (select range(1, 1e9), repeat('x', 1e9)), outside memory_limit,
// so server/query's sandbox caps those functions statically (see
// query.MaxListElements, query.MaxBuiltString): such queries get a 400
// before DuckDB sees them. select * shows __time__, __source__, __topic__
// and the field-indexed keys; storage columns stay internal.
//
// # Figures
//
// Shared 2-core box at load average ~20, so CPU time is the figure that
// means something (wall time was 2-4x CPU time). Search over 10M nginx
// lines (20 day partitions, benchmark BenchmarkSearch with
// SLUICE_BENCH_10M=1, CPU per query over all DuckDB threads, first cold
// run included): full text without match (full scan) 528 ms, rare match
// 154 ms, common term 87 ms (newest partitions only), status:404 63 ms,
// "* | select status, count(*) group by status" 86 ms, a filtered
// group-by 396 ms. Re-measured 2026-11-23 after the load-size change
// (load average ~1.5, same cached fixture): full text without match 512
// CPU-ms (369 ms wall), group-by status 91 CPU-ms (107 ms wall).
// Ingestion: see Limits.
//
// # Limits (not done)
//
// Chinese segmentation (chn) and key aliases are not supported (tags are
// columns in SQL only when indexed, "__tag__:name", as in the Log
// Service); a client sending logs over thousands of distinct days creates
// thousands of tables (the API should enforce the Log Service's
// time window).
//
// Ingestion is far from the 500k lines/s goal (4 µs CPU per line on 2
// cores). BenchmarkWrite (nginx LogGroups, 10 keys, 8 concurrent writers,
// CPU per line including the loader's work until everything is in
// DuckDB; shared box, figures move by up to 2x between runs), 2026-11-23
// at load average ~1-2: 4 KiB groups 19-22 µs per line, 64 KiB 15-20 µs,
// 1 MiB 13-17 µs, 32 x 1 MiB 24-34 µs, i.e. 40-75k lines/s wall on the
// whole box (the same figures before the FlushInterval/QueueBytes change
// within noise: this benchmark's bursts already filled row groups; the
// defaults matter for the server's own config). Acknowledging (row
// building, WAL append, fsync) costs 5-7 µs per line for 64 KiB-1 MiB
// groups, so bursts are taken at 140-330k lines/s and loaded afterwards,
// up to QueueBytes (over HTTP, server/app BenchmarkPutLogsE2E, earlier:
// 58.6k acknowledged lines/s wall with 16 senders, 43k with one, bound
// by this disk's fsync latency). The loader alone (BenchmarkLoad, rows prebuilt) costs
// 8-16 µs per line for full loads; disk ~140-180 bytes per line for these
// (synthetic, repetitive) lines.
//
// Where the loader's time goes (perf with DWARF call graphs, BenchmarkLoad):
// ~35% compressing row groups (analysis: dictionary hashing of long unique
// strings and FSST training ~21%; FSST compression ~10%), ~18% copying
// strings into DuckDB's transaction-local storage, ~11% the Appender's own
// buffer (a ColumnDataCollection copy of every value), ~7% setting values
// through the Go driver (one cgo call per string), and ~20% page faults on
// freshly allocated memory under all of it. What was tried:
//   - threads=1 (Config.Threads) cuts the loader's CPU by ~20% for full
//     loads and most of the small-load penalty (20k-row loads 8.5 µs
//     against 23 µs with 2 threads): with 2 threads the calling thread
//     spins on DuckDB's task queue (pthread mutex lock/unlock were 21% of
//     cycles) while the worker compresses. Not the default: queries then
//     take ~1.6x the wall time (full text without match 0.38 s, group-by
//     48 ms over 10M lines, still within targets).
//   - disabled_compression_methods='fsst': ~2 µs less per line, 2.3x the
//     disk (410 against 180 bytes per line). Not taken.
//   - USING COMPRESSION fsst for __contents__/__line__ (skip analysis):
//     slower on this data, where __line__ compresses best as dictionary.
//   - allocator_flush_threshold, Appender.Flush every 8k rows,
//     preserve_insertion_order=false: no effect beyond noise.
//   - JE_MALLOC_CONF=dirty_decay_ms:60000,muzzy_decay_ms:60000 in the
//     environment (DuckDB's jemalloc) cut page faults by ~30% and the
//     loader by ~10-15% in one run; a deployment knob, not set here.
//
// Next steps, not done: append through a chunk table function (INSERT ...
// SELECT) or Arrow (duckdb_arrow build tag; arrow-go v18.4.1 is already in
// go.sum) to drop the Appender's buffer copy and per-value cgo; loads cut
// at row-group multiples per day table so no small trailing row group is
// re-compressed at checkpoint; and rows kept as typed columns rather than
// []driver.Value (fewer allocations, less GC and fewer page faults on the
// Go side, ~3 µs per line with the tokenizer at ~1.2 µs).
package duckdb
