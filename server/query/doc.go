// Package query implements the Log Service query language "search | SQL"
// (docs/log-service-api.md §5) for Sluice's stores: a parser for the search syntax, a
// compiler from a parsed search to a parameterised DuckDB boolean
// expression, and a sandbox that admits only a read-only SELECT over the
// logstore for the SQL part.
//
// Typical use by a store (one call):
//
//	c, err := query.Compile(text, query.TypedColumnsSchema(idx, "__line__", "__tags__"),
//		query.SandboxOptions{Logstore: ls, Relation: "logs", Prefixed: true, DefaultLimit: 100})
//	// err: *query.Error, errors.Is(err, store.ErrInvalidQuery)
//	// c.Where: boolean SQL over one row, c.Where.Args its parameters
//	// c.SQL (when c.Query.HasSQL): run "WITH logs AS (SELECT * FROM <table>
//	//   WHERE <time range> AND <c.Where.SQL>) " + c.SQL.SQL with
//	//   args = time args + c.Where.Args + c.SQL.Args
//
// or step by step: Parse → CompileSearch(q.Search, schema) →
// q.SandboxSQL(opts) (with opts.Source the store passes its filtered
// relation and gets a complete statement back).
//
// # Search
//
// Parse/ParseSearch produce a Node tree: *All, *And, *Or, *Not, *Term
// (full text when Key == "", else key:value; Phrase when quoted; Wild lists
// unescaped * and ? offsets), *Exists (key:*), *Compare (key > 10),
// *Range (key in [a b], (a b], * = unbounded). Keywords and/or/not are
// case-insensitive; quote them ("and") to search the word. Precedence is
// ':' > quotes > parentheses > and/not > or; juxtaposition is and; "a not b"
// is "a and not b". `__tag__:name:value` yields Key TagPrefix+"name".
// A bare value may contain ':' (time:10:20). `key in (a b)` with
// non-numeric bounds is read as words, not as a range. Node.String
// renders a node back into the syntax (the fuzz test re-parses it).
//
// Errors are *Error{Pos, Msg}, printed "syntax error at <pos>: <msg>",
// Pos a byte offset in the text given (Query.SandboxSQL shifts SQL errors
// to offsets in the whole query). A sandboxed statement maps its bytes back
// to the query (Expr.QueryPos), so a store can report an error its
// database found at a place of the statement as an *Error with Kind "SQL
// error" at the place of the query the user wrote.
//
// # Compilation
//
// CompileSearch(node, Schema) returns an Expr{SQL, Args} ('?'
// placeholders). User values never enter the SQL text. The Schema says how
// rows are laid out: Line is the full-text token column, Key(k) returns
// KeyColumns{Value, Tokens, Number, Type} for a key. DefaultSchema gives the
// reference DuckDB layout (columns __time__ BIGINT, __time_ns__,
// __topic__, __source__, __tags__ and __fields__ MAP(VARCHAR,VARCHAR),
// __line__ token text; see DefaultTableDDL). TypedColumnsSchema is the
// server/store/duckdb layout: one typed column per field-indexed key,
// tags as a JSON object column; keys without a field index are an error
// there, as in SLS.
//
// Token text: the full-text column holds Tokenizer.AppendValue over the
// log's values: " tok tok " per value (lowercased unless case sensitive),
// concatenated. A term becomes contains(line, ' tok1 tok2 ') (a phrase
// when the term contains delimiters), a trailing * a prefix
// contains(line, ' tok'), other wildcards regexp_matches. key:term on a
// text key without a Tokens column matches its tokens in Value with an
// RE2 pattern built from the key's delimiters (after a contains()
// prefilter on the longest literal, which lets DuckDB skip most regex
// evaluations; a store can avoid the regex entirely by giving a Tokens
// column). long/double keys (from the
// index or KeyColumns.Type) compare numerically; wildcards on them are an
// error, as are comparisons on text/json keys. key:"" is an empty value.
// Every leaf is COALESCE(..., FALSE), so a missing key never makes NOT
// drop a log.
//
// # SQL sandbox
//
// SandboxSQL tokenises the SQL (strings, quoted identifiers, nested
// comments) and allows only: one statement starting SELECT, WITH, FROM or
// VALUES; table references that are "log", the logstore name or an
// in-scope earlier CTE; a top-level SELECT without FROM reads the
// logstore; functions from the allowlist in functions.go (AllowedFunction; plus the
// renames of SLSAlias); table functions unnest/generate_series/range.
// It refuses read_csv*/read_parquet/read_json*/read_text/read_blob/glob,
// parquet_*, duckdb_*, pragma_*, query/query_table, getenv,
// current_setting, sqlite_scan/postgres_scan (none is in the allowlist),
// string-literal tables, qualified table names, COPY/ATTACH/DETACH/
// INSTALL/LOAD/PRAGMA/SET/CALL/EXPORT/IMPORT/CREATE/INSERT/UPDATE/DELETE/
// DROP/ALTER and other non-SELECT keywords, parameters and $-quoting,
// prefixed strings (E'...'), non-ASCII unquoted identifiers and inner ';'.
// The output is rebuilt from the checked tokens, so comments cannot hide
// anything from DuckDB. Stores must also set enable_external_access=false
// on the query connection as defense in depth; the sandbox does not rely
// on it.
//
// Limits (limits.go). DuckDB's planner is neither interruptible nor
// governed by memory_limit, so a query is held to Limits before DuckDB
// sees it: the text length (CheckLength, the store's call), and, counted
// on the tokens, CTEs, subqueries (parenthesised SELECTs and set
// operation branches), joins and bracket nesting; errors over a limit are
// *Error with Limit set, matching store.ErrQueryLimit. Size caps: DuckDB
// builds a scalar call's whole value in one uninterruptible step over a
// vector of 2,048 rows — already while planning when its arguments are
// constant — so scalar range/generate_series take number literals
// building at most MaxListElements elements; repeat/lpad/rpad a literal
// count building at most MaxBuiltString bytes (16 KiB, the Log Service's
// maximum value length in SQL); bar a literal width; printf/format a
// literal format with widths up to MaxBuiltString; none of range,
// generate_series, repeat, lpad, rpad, bar nested in another. Values that
// are not literals (a column, a CTE's value) are checked at run time:
// repeat of a computed value, replace and regexp_replace (replacement
// and options literal) are rewritten into a lambda that computes the
// result's size from the arguments' before building it and raises an
// error ending in ValueLimitMarker past MaxBuiltString (guardCall). Errors
// say which limit and how to write the query. range/generate_series in
// FROM stream rows and stay unbounded here; other resource use (long
// scans, memory) is the store's to bound: a query deadline with
// interrupt, memory_limit and a hard cap on DuckDB's allocations, result
// caps.
//
// Everything is hand-written: no Go library parses the SLS search syntax,
// and a full DuckDB SQL parser in Go does not exist; a tokenizer plus an
// allowlist is small enough to audit.
package query
