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
// the caller's strings), then queues them; one writer goroutine takes
// everything queued (up to MaxBatchRows) and appends it with the DuckDB
// Appender in a single transaction (group commit). Write returns after
// that commit, i.e. once the rows are in DuckDB's WAL; TestDurabilityKill9
// SIGKILLs a writing child process and finds every acknowledged row after
// restart. The queue is bounded by QueueBytes; when full, Write fails
// fast with store.ErrOverloaded (retryable 503) instead of growing
// memory. If a multi-write transaction fails, each write is retried alone
// so one bad write cannot fail others. DDL (EnsureLogstore, drops,
// retention) runs on the writer goroutine between commits.
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
// keeps its slot until it has stopped. DuckDB cannot interrupt one huge
// function call (select range(1, 1e9) builds a billion-element list, even
// at plan time through constant folding), so such queries burn CPU until
// done — bounded in number by MaxQueries.
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
// group-by 396 ms. Ingestion: see Limits.
//
// # Limits (not done)
//
// Chinese segmentation (chn), key aliases and __tag__ columns in SQL are
// not supported; a client sending logs over thousands of distinct days
// creates thousands of tables (the API should enforce the Log Service's
// time window). Ingestion measured ~16-17 µs CPU per nginx line with
// DuckDB threads=1 (about 60k lines/s per core), far from the 500k
// lines/s goal: ~7 µs is DuckDB's commit (WAL write plus compression),
// ~3.5 µs the Appender's per-value cgo calls, ~1.6 µs building rows in
// Go. Small groups are worse: 4 KiB groups (20 lines) from 8 concurrent
// writers cost ~90-100 µs CPU per line, i.e. about a millisecond of
// DuckDB work per commit (a one-row commit alone costs ~1.4 ms CPU: WAL
// write and fsync) that group commit can only amortise over the writes
// waiting at that moment. Getting there needs Arrow ingestion (duckdb-go's duckdb_arrow build
// tag) or an own WAL with large asynchronous loads.
package duckdb
