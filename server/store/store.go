// Package store defines the contract between the Log Service API and the log
// storage backends (embedded DuckDB by default, ClickHouse later): the request
// and result types and the sentinel errors. Backends live in sub-packages and
// export concrete types; the API declares the small interfaces it calls.
// storetest holds the conformance suite every backend must pass.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/index"
)

// Sentinel errors; check with errors.Is.
var (
	// ErrOverloaded means the write was not accepted because ingestion is
	// saturated; the client should retry (API: 503 ServerBusy... retryable).
	ErrOverloaded = errors.New("store overloaded")
	// ErrLogstoreNotFound means the project/logstore has no storage.
	ErrLogstoreNotFound = errors.New("logstore not found")
	// ErrInvalidQuery wraps query syntax and semantic errors (API: 400).
	ErrInvalidQuery = errors.New("invalid query")
)

// LogstoreSpec is what a backend needs to know about a logstore.
type LogstoreSpec struct {
	Project  string
	Logstore string
	TTLDays  int // retention; <= 0 or >= 3650 keeps data forever
	Index    *index.Config
}

// SearchRequest is one GetLogs call (sls-api.md §4).
type SearchRequest struct {
	From, To time.Time // [From, To)
	Topic    string
	Query    string // "search | sql"; empty or "*" = everything
	Line     int    // page size for search results (<= 100 by API rule)
	Offset   int
	Reverse  bool // newest first
}

// Field is one named value of a result row; values are strings on the wire.
type Field struct {
	Key, Value string
}

// Column describes one column of a SQL result.
type Column struct {
	Name string
	Type string // "varchar", "bigint", "double", ... as the backend reports it
}

// SearchResult is what GetLogs returns.
type SearchResult struct {
	// Rows: for searches, one row per log with __time__, __source__,
	// __topic__, __tag__:k and content keys; for SQL, one row per result row
	// with Columns' names in order.
	Rows          [][]Field
	HasSQL        bool
	Columns       []Column // set when HasSQL
	Count         int      // number of rows returned
	ProcessedRows int64
	Elapsed       time.Duration
	WhereQuery    string // the search part
	AggQuery      string // the SQL part
	Keys          []string
}

// HistogramRequest is one GetHistograms call.
type HistogramRequest struct {
	From, To time.Time
	Topic    string
	Query    string        // search part only
	Interval time.Duration // 0 = backend chooses (about 60 buckets)
}

// Bucket is one histogram bucket, [From, To).
type Bucket struct {
	From, To time.Time
	Count    int64
}

// Store is the method set every log storage backend implements and the
// conformance suite in storetest exercises. Callers that need less should
// declare a narrower interface of their own.
//
// Project and logstore are always explicit arguments; a backend never
// infers the tenant.
type Store interface {
	// EnsureLogstore creates storage for the logstore or updates its
	// retention and index (new typed columns for newly indexed keys).
	EnsureLogstore(ctx context.Context, spec LogstoreSpec) error
	// DropLogstore deletes the logstore's data.
	DropLogstore(ctx context.Context, project, logstore string) error
	// Write stores the groups. It returns only once the data is durable
	// (a crash right after must not lose it). It must not keep groups or
	// any string of them after returning (they may alias a request
	// buffer). received is the server receive time (__tag__:__receive_time__).
	// Returns ErrOverloaded when ingestion is saturated.
	Write(ctx context.Context, project, logstore string, groups []protocol.LogGroup, received time.Time) error
	// Search runs a "search | sql" query.
	Search(ctx context.Context, project, logstore string, req SearchRequest) (*SearchResult, error)
	// Histogram counts matching logs per time bucket.
	Histogram(ctx context.Context, project, logstore string, req HistogramRequest) ([]Bucket, error)
	// Close flushes and releases the backend.
	Close() error
}
