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
// keeps ttl, index and column list. Logs live in one table per logstore
// per UTC day of the log time, ls<id>_<yyyymmdd>; queries read the days
// overlapping [from, to) (UNION ALL BY NAME), so time pruning is by
// construction and retention drops whole tables (DROP TABLE; never row
// deletes). Columns:
//
//	__time__ BIGINT, __time_ns__ INTEGER, __topic__, __source__ VARCHAR,
//	__tags__ VARCHAR (JSON object), __receive_time__ BIGINT,
//	__contents__ BLOB (all keys/values, original order and bytes),
//	__line__ VARCHAR (full-text tokens), then one typed column per
//	field-indexed key named after it: text/json VARCHAR, long BIGINT,
//	double DOUBLE (NULL when absent or unparsable).
//
// Full text: __line__ is query.Tokenizer.AppendValue over the values the
// line index covers (include_keys/exclude_keys), lowercased unless
// caseSensitive; a term is contains(__line__, ' tok '). An index without
// a line section has no full-text column; a logstore without any index
// gets the default tokens so it is still searchable.
//
// Index changes ALTER every partition: new keys add columns, keys removed
// or changing type drop theirs. Existing rows are not backfilled (NULL in
// new columns); __contents__ still has every value. Writes accepted under
// an older index are reshaped to the current one before they are appended.
//
// Why these choices (measured on the shared 2-core box, 1M nginx rows,
// CPU time per row for append+commit; see store_bench_test.go):
// contents as one binary BLOB beat JSON/MAP because it is one value per row
// for the appender and is decoded only for returned rows. DuckDB's default
// compression costs ~8 µs/row at commit (14.5 MiB for 118k rows) against
// ~4 µs uncompressed (72 MiB) or ~6 µs dictionary-only (34 MiB); default was
// kept for the 5x smaller files and faster scans. One file with day tables
// rather than a file per day ATTACHed: ATTACH needs
// enable_external_access, which this store turns off.
//
// Retention counts from a log's own time (__time__), because partitions
// are by log day: that keeps time pruning exact and makes expiry a DROP
// TABLE. The Log Service counts from arrival instead; the difference shows
// only for logs written with old timestamps. A day is kept while it is
// within the last TTLDays days (UTC); older days are hidden from queries
// at once and dropped by EnforceRetention (hourly). Logs whose time is
// already past the ttl when written are not stored: they are counted in
// sluice_store_expired_logs_dropped_total and logged.
//
// # Ingestion and durability
//
// Write converts groups to rows on the caller's goroutine (nothing keeps
// the caller's strings) and appends one record (logstore id, receive
// time, the groups re-encoded as a LogGroupList protobuf, CRC32C) to the
// store's own write-ahead log in DataDir/wal (wal.go). One flusher
// goroutine writes everything appended meanwhile with one write and one
// fsync (group commit); Write returns once its record is fsynced. A 200
// from PutLogs therefore means durable: TestDurabilityKill9 and
// TestWALReplayAfterKill SIGKILL a writing process and find every
// acknowledged row after restart, exactly once.
//
// The acknowledged rows wait in memory for the loader (the writer
// goroutine), which appends them with the DuckDB Appender in one
// transaction once LoadRows (122,880 = one DuckDB row group) are queued,
// the oldest has waited FlushInterval (5s), a query asks, or the queue
// is half full. The same transaction stores the WAL position loaded so far
// (table sluice_wal); Open replays records after it, and segments (64 MiB)
// wholly below it are deleted. Why: a DuckDB commit costs about a
// millisecond of CPU whatever its size (its WAL write and fsync, measured
// ~1.4 ms for one row) and DuckDB writes a transaction's full row groups
// straight to the database file (optimistic writes) instead of its WAL,
// so many small commits were the dominant cost for small LogGroups; the
// own WAL costs a write of the bytes received plus one fsync per batch of
// concurrent writes. The rows in memory are reused by the loader, so the
// WAL is only read at Open.
//
// Load size matters (BenchmarkLoad): a load of at least a row group per
// day table takes DuckDB's bulk path (full row groups are compressed and
// written once, the commit only links them), a smaller one is appended
// into the table, written to DuckDB's WAL and compressed again at its
// checkpoint. Measured with DuckDB's default threads (2 here): 8-16 µs
// CPU per line for 122,880-row loads against 21-33 µs for 20,000-row
// loads, so FlushInterval (5s) and QueueBytes
// (half of 128 MiB starts a load, ~180k nginx lines) leave room for a
// full row group at modest ingestion rates; with 500ms and 64 MiB they
// did not.
//
// Visibility: a query first makes its logstore's acknowledged writes
// visible (waitLoaded: if any are pending it asks the loader for a load and
// waits for it), so read-after-write holds for Search and Histogram. A
// reader of DuckDB that does not go through them (nothing in Sluice) sees
// data at most FlushInterval plus one load late. Under constant ingestion,
// frequent queries make loads smaller (each query of a logstore with
// pending writes triggers one).
//
// Bounds: QueueBytes (128 MiB of raw log bytes) bounds acknowledged but
// unloaded data, in memory and in the WAL; beyond it Write fails fast with
// store.ErrOverloaded (retryable 503). If a multi-write load fails, each
// write is loaded alone; a write that still fails (or whose logstore was
// dropped before it was loaded) was already acknowledged, so it is
// counted in sluice_store_load_failed_logs_total and logged — never
// silently lost. A failed WAL write or fsync makes every later Write fail
// (the file may hold a partial batch). DDL (EnsureLogstore, drops,
// retention) runs on the writer goroutine between loads; rows accepted
// under an older index are reshaped when loaded.
//
// # Queries
//
// Search pages through partitions newest (or oldest) first and stops once
// offset+line rows were found. SQL runs as server/query's sandboxed
// statement over WITH log AS (SELECT * FROM <partitions> WHERE <time,
// topic, search>). The database runs with enable_external_access=false
// and lock_configuration=true (set at Open, database-wide) as defense in
// depth behind the sandbox. Every value is returned as a string; SQL NULL
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
