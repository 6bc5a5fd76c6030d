// Package store defines the contract between the Log Service API and the log
// storage backends (server/store/duckdb, on a data directory or on object
// storage with a PostgreSQL catalog): the request and result types and the
// sentinel errors. Backends live in sub-packages and
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
	// ErrInvalidCursor means a shard cursor is outside the shard's
	// retained groups: before the first (expired) or after the end
	// (API: 400 InvalidCursor).
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrQueryLimit means the query went over one of the server's query
	// limits (text length, CTEs, joins, value sizes, memory, time, result
	// size); the message names it (API: 400 QueryLimitExceeded, not
	// retryable: the same query would hit it again).
	ErrQueryLimit = errors.New("query limit exceeded")
)

// MaxShards bounds shard ids: a shard is in [0, MaxShards).
const MaxShards = 1024

// LogstoreSpec is what a backend needs to know about a logstore.
type LogstoreSpec struct {
	Project  string
	Logstore string
	TTLDays  int // retention; <= 0 or >= 3650 keeps data forever
	Index    *index.Config
}

// SearchRequest is one GetLogs call (docs/log-service-api.md §4).
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

// CursorKind says which position GetCursor asks for.
type CursorKind int

// Cursor kinds.
const (
	CursorBegin CursorKind = iota // the first group still retained
	CursorEnd                     // after the last group: where the next write lands
	CursorTime                    // the first group received at or after Time
)

// CursorAt is a GetCursor request.
type CursorAt struct {
	Kind CursorKind
	Time time.Time // CursorTime only
}

// PullRequest is one PullLogs call: groups from Cursor on.
type PullRequest struct {
	Cursor int64
	// EndCursor stops before that group (< 0: no end but the shard's).
	EndCursor int64
	// MaxGroups is at most the number of groups returned (> 0);
	// MaxBytes bounds their size past the first group (> 0).
	MaxGroups int
	MaxBytes  int
}

// PullResult is what PullLogs returns.
type PullResult struct {
	// Data is the groups as a LogGroupList protobuf, exactly as received
	// (re-encoded but equal field by field), in shard order.
	Data   []byte
	Groups int
	Next   int64 // the cursor after the last group returned (= Cursor when none)
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
	// WriteShard is Write to one shard of the logstore: the groups are
	// appended to that shard's sequence in the order of acknowledged
	// writes (cursors are their positions: one per group, consecutive)
	// and kept for the logstore's TTL by receive time, as well as stored
	// for queries. Write is WriteShard to shard 0.
	WriteShard(ctx context.Context, project, logstore string, shard int, groups []protocol.LogGroup, received time.Time) error
	// Cursor returns a cursor of the shard (a shard never written has
	// begin = end = 0).
	Cursor(ctx context.Context, project, logstore string, shard int, at CursorAt) (int64, error)
	// CursorTime returns when the group at cursor was received (for the
	// end cursor: the last group's time). ErrInvalidCursor outside the
	// shard's groups.
	CursorTime(ctx context.Context, project, logstore string, shard int, cursor int64) (time.Time, error)
	// Pull reads groups of a shard in order. A cursor at the end returns
	// no groups and itself as Next; one outside [begin, end] is
	// ErrInvalidCursor.
	Pull(ctx context.Context, project, logstore string, shard int, req PullRequest) (*PullResult, error)
	// Search runs a "search | sql" query.
	Search(ctx context.Context, project, logstore string, req SearchRequest) (*SearchResult, error)
	// Histogram counts matching logs per time bucket.
	Histogram(ctx context.Context, project, logstore string, req HistogramRequest) ([]Bucket, error)
	// Close flushes and releases the backend.
	Close() error
}
