package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	duck "github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/query"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/shardlog"
	"github.com/sluicelog/sluice/server/store/wal"
)

// Config configures the DuckDB store.
type Config struct {
	// DataDir holds the segment files (segments/), the database file with
	// the catalog (sluice-logs.duckdb), DuckDB's WAL and the store's own
	// WAL (wal/).
	DataDir string
	// QueueBytes bounds acknowledged writes not yet written to segments
	// (their columns in memory, their records in the WAL; approximate).
	// Writes beyond it fail with store.ErrOverloaded. Default 128 MiB:
	// half of it starts a load.
	QueueBytes int64
	// MaxBatchRows caps the rows the loader commits in one transaction.
	// Default 256k.
	MaxBatchRows int
	// LoadRows: the loader loads as soon as this many rows wait (default
	// 122,880: segments of a few row groups each).
	LoadRows int
	// FlushInterval bounds how long an acknowledged write waits for the
	// loader when fewer than LoadRows rows are queued, i.e. the visibility
	// lag for queries that do not ask for it to be flushed (default 5s;
	// Search and Histogram flush the logstore's pending writes first, so
	// only readers of the files themselves see the lag). Longer makes
	// fewer, larger segments at modest ingestion rates.
	FlushInterval time.Duration
	// SyncInterval picks the durability of an acknowledged write, as
	// Elasticsearch's translog durability does. 0 (the default, "request"):
	// Write returns once its WAL record is fsynced, so an acknowledged
	// write survives a power loss. Above 0 ("async"): Write returns once
	// its record is written to the WAL file, which survives a crash or
	// kill of the process but not of the machine; the WAL is fsynced every
	// SyncInterval, the most a power loss can lose. Small writes then no
	// longer wait for the disk (4 KiB LogGroups: about 2× the throughput
	// on the benchmark VM, see docs/benchmarks.md).
	SyncInterval time.Duration
	// MemoryLimit is DuckDB's memory_limit (default "768MB", "" = that
	// default; DuckDB's own default is 80% of RAM, too much for a server
	// that shares the machine; 768MB keeps the server's peak RSS under
	// 1.5 GiB in e2e/abuse, and the 10M-line benchmark's queries run as
	// fast as at 1GB, docs/benchmarks.md): what its buffer manager hands out for
	// hash tables, sorts, aggregates and results, spilling to disk beyond
	// it. Threads is DuckDB's threads, the threads one query runs on (0 =
	// cores).
	MemoryLimit string
	Threads     int
	// MemoryHardLimit caps every allocation DuckDB makes through its
	// allocator, the vectors of values it computes included, which
	// memory_limit does not govern (bytes; default MemoryLimit plus a
	// quarter). An allocation past it fails, and the query that made it
	// fails with store.ErrQueryLimit (memguard.go). It is process-wide:
	// with several stores in one process the largest configured wins.
	MemoryHardLimit int64
	// TempDirLimit is DuckDB's max_temp_directory_size, the disk a query
	// may spill to (default "4GB").
	TempDirLimit string
	// QueryTimeout bounds one Search or Histogram (default 60s); a query
	// running longer is interrupted and fails with store.ErrQueryLimit
	// naming the limit.
	QueryTimeout time.Duration
	// MaxResultRows and MaxResultBytes cap what one SQL query may return
	// (defaults 100,000 rows and 16 MiB of values: the reply is built in
	// memory, a few times that); a larger result fails with
	// store.ErrQueryLimit asking for a LIMIT or an aggregate.
	MaxResultRows  int
	MaxResultBytes int64
	// MaxQueries bounds concurrently running queries (Search, Histogram),
	// default 8; MaxQueriesPerProject bounds those of one project
	// (default half of MaxQueries), so one tenant cannot take every slot.
	// A query waits up to QueueTimeout (default 5s) for a slot, with at
	// most MaxQueuedQueries (default 4 x MaxQueries) waiting; past either
	// it fails with store.ErrOverloaded.
	MaxQueries           int
	MaxQueriesPerProject int
	MaxQueuedQueries     int
	QueueTimeout         time.Duration
	// QueryLimits bound the query text and the SQL's CTEs, subqueries,
	// joins and nesting, checked before DuckDB plans it (zero fields:
	// query.DefaultLimits).
	QueryLimits query.Limits
	// RetentionInterval is how often expired day partitions are dropped.
	// Default 1h.
	RetentionInterval time.Duration
	// Now returns the current time (retention); nil = time.Now.
	Now func() time.Time

	// Shared, when set, makes this store one node of several that share
	// segments in object storage and the catalog in a database, instead of
	// keeping both in DataDir (see "Several nodes" in the package
	// documentation). Writes are then acknowledged by the group commit,
	// without a local WAL; FlushInterval defaults to its CommitInterval.
	Shared *Shared

	walSegmentBytes int64 // tests: WAL segment size (default wal.SegmentBytes)
}

// Validate reports configuration errors with the field name and the fix.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("duckdb store: DataDir is empty: set --data-dir to a writable directory")
	}
	if c.QueueBytes < 0 || c.MaxBatchRows < 0 || c.LoadRows < 0 || c.FlushInterval < 0 || c.MaxQueries < 0 || c.Threads < 0 || c.RetentionInterval < 0 ||
		c.QueryTimeout < 0 || c.MaxResultRows < 0 || c.MaxResultBytes < 0 {
		return errors.New("duckdb store: QueueBytes, MaxBatchRows, MaxQueries, Threads, RetentionInterval, QueryTimeout, MaxResultRows and MaxResultBytes must not be negative (nor LoadRows, FlushInterval)")
	}
	if c.Shared != nil && (c.Shared.Catalog == nil || c.Shared.Objects == nil) {
		return errors.New("duckdb store: Shared needs a Catalog and Objects")
	}
	if c.SyncInterval < 0 {
		return fmt.Errorf("duckdb store: SyncInterval %v is negative: use 0 to fsync before every acknowledgement, or a positive interval such as 1s", c.SyncInterval)
	}
	if c.MaxQueriesPerProject < 0 || c.MaxQueuedQueries < 0 || c.QueueTimeout < 0 || c.MemoryHardLimit < 0 {
		return errors.New("duckdb store: MaxQueriesPerProject, MaxQueuedQueries, QueueTimeout and MemoryHardLimit must not be negative")
	}
	if c.MemoryLimit != "" {
		if _, err := parseBytes(c.MemoryLimit); err != nil {
			return fmt.Errorf("duckdb store: MemoryLimit: %w", err)
		}
	}
	if c.TempDirLimit != "" {
		if _, err := parseBytes(c.TempDirLimit); err != nil {
			return fmt.Errorf("duckdb store: TempDirLimit: %w", err)
		}
	}
	if err := c.QueryLimits.Validate(); err != nil {
		return fmt.Errorf("duckdb store: %w", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.QueueBytes == 0 {
		c.QueueBytes = 128 << 20
	}
	if c.MaxBatchRows == 0 {
		c.MaxBatchRows = 256 << 10
	}
	if c.LoadRows == 0 {
		c.LoadRows = 122_880
	}
	c.LoadRows = min(c.LoadRows, c.MaxBatchRows)
	if c.Shared != nil {
		c.Shared = c.Shared.withDefaults()
		if c.FlushInterval == 0 {
			c.FlushInterval = c.Shared.CommitInterval
		}
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 5 * time.Second
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = time.Hour
	}
	if c.MaxQueries == 0 {
		c.MaxQueries = 8
	}
	if c.MaxQueriesPerProject == 0 {
		c.MaxQueriesPerProject = max(1, c.MaxQueries/2)
	}
	if c.MaxQueuedQueries == 0 {
		c.MaxQueuedQueries = 4 * c.MaxQueries
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = 5 * time.Second
	}
	c.QueryLimits = c.QueryLimits.WithDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.walSegmentBytes == 0 {
		c.walSegmentBytes = wal.SegmentBytes
	}
	if c.MemoryLimit == "" {
		c.MemoryLimit = "768MB"
	}
	if c.MemoryHardLimit == 0 {
		n, _ := parseBytes(c.MemoryLimit) // checked by Validate
		c.MemoryHardLimit = n + n/4
	}
	if c.TempDirLimit == "" {
		c.TempDirLimit = "4GB"
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = time.Minute
	}
	if c.MaxResultRows == 0 {
		c.MaxResultRows = 100_000
	}
	if c.MaxResultBytes == 0 {
		c.MaxResultBytes = 16 << 20
	}
	return c
}

// Settings carries the store's logger and metrics registerer.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
}

// Store is the embedded DuckDB log store. It implements store.Store.
type Store struct {
	cfg  Config
	log  *slog.Logger
	db   *sql.DB
	conn *duck.Connector
	m    *metrics

	mu        sync.RWMutex // guards logstores and their mutable fields
	logstores map[lsKey]*logstore
	nextID    int64

	closeMu sync.RWMutex // Write holds R while enqueueing; Close holds W
	closed  bool

	wal         *wal.Log[*writeReq]
	shards      *shardlog.Log
	lq          loadQueue
	ctl         chan ctlJob
	queuedBytes atomic.Int64 // raw bytes of writes not yet loaded
	stop        chan struct{}
	walStop     chan struct{}
	walDone     chan struct{}
	stopLoader  chan struct{}
	wg          sync.WaitGroup

	pools   colPools
	cpu     chan struct{} // bounds concurrent row building to GOMAXPROCS
	nextSeg int64         // last segment id; writer goroutine only
	graves  []grave       // replaced segment files to remove; writer goroutine only

	admit   *admission
	queries sync.WaitGroup // running queries; Close waits for them
	pages   pageCache      // keys of recent searches, for their next pages
	stats   statsCache     // Shared: decoded segment statistics

	shardEntries []shardlog.Entry // scratch of synced (the WAL flusher)
	syncedReqs   []*writeReq      // scratch of synced

	sh *Shared // nil: the embedded store
	// instance names this run of the node in the catalog's node
	// registrations: Node plus a random suffix, so that two runs (or two
	// stores in one process) never overwrite each other's query timeout.
	instance string
}

var _ store.Store = (*Store)(nil)

type lsKey struct{ project, logstore string }

type logstore struct {
	id      int64
	key     lsKey
	ttlDays int
	schema  *schema
	days    map[int32]bool       // DuckDB day tables (written by earlier versions)
	segs    map[int32][]*segment // Parquet segments by day; slices are copied on change
	pending atomic.Int64         // parts acknowledged but not yet loaded

	catIndex, catColumns string // Shared: the catalog row's JSON this schema was built from
}

// Open opens (creating if needed) the store in cfg.DataDir, replays the
// DuckDB WAL and starts the writer.
func Open(cfg Config, set Settings) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("duckdb store: create data dir: %w", err)
	}
	// enable_external_access is turned off in init, after allowing the
	// segment directory. allocator_background_threads lets jemalloc hand
	// freed pages back to the system in the background, not only when
	// DuckDB allocates again: in e2e/abuse the server's RSS after
	// memory-hungry queries stayed ~200-400 MiB above DuckDB's bytes in
	// use without it.
	dsn := filepath.Join(cfg.DataDir, "sluice-logs.duckdb") + "?autoinstall_known_extensions=false&autoload_known_extensions=false&allocator_background_threads=true"
	if cfg.MemoryLimit != "" {
		dsn += "&memory_limit=" + cfg.MemoryLimit
	}
	if cfg.Threads > 0 {
		dsn += fmt.Sprintf("&threads=%d", cfg.Threads)
	}
	m, err := newMetrics(set.Registerer)
	if err != nil {
		return nil, err
	}
	connector, err := duck.NewConnector(dsn, nil)
	if err != nil {
		return nil, fmt.Errorf("duckdb store: open %s: %w", cfg.DataDir, err)
	}
	s := &Store{
		cfg:        cfg,
		log:        set.Logger,
		db:         sql.OpenDB(connector),
		conn:       connector,
		m:          m,
		logstores:  map[lsKey]*logstore{},
		ctl:        make(chan ctlJob),
		stop:       make(chan struct{}),
		walStop:    make(chan struct{}),
		walDone:    make(chan struct{}),
		stopLoader: make(chan struct{}),

		cpu: make(chan struct{}, runtime.GOMAXPROCS(0)),
		sh:  cfg.Shared,
	}
	s.admit = newAdmission(cfg.MaxQueries, cfg.MaxQueriesPerProject, cfg.MaxQueuedQueries, cfg.QueueTimeout, m)
	memguardRaiseLimit(cfg.MemoryHardLimit)
	if err := s.init(context.Background()); err != nil {
		_ = s.db.Close()
		_ = connector.Close()
		return nil, err
	}
	wconn, err := s.db.Conn(context.Background())
	if err != nil {
		_ = s.db.Close()
		_ = connector.Close()
		return nil, fmt.Errorf("duckdb store: writer connection: %w", err)
	}
	s.lq.loadedCh = make(chan struct{})
	s.lq.kick = make(chan struct{}, 1)
	s.shards, err = shardlog.Open(shardlog.Config{Dir: filepath.Join(cfg.DataDir, shardsDir), Now: cfg.Now},
		shardlog.Settings{Logger: set.Logger, Registerer: set.Registerer})
	if err == nil {
		if s.sh != nil {
			err = s.openShared(context.Background())
		} else {
			err = s.replay(context.Background(), wconn)
		}
	}
	if err != nil {
		if s.shards != nil {
			_ = s.shards.Close()
		}
		_ = wconn.Close()
		_ = s.db.Close()
		_ = connector.Close()
		return nil, err
	}
	s.wg.Add(2)
	go func() {
		defer close(s.walDone)
		if s.wal != nil {
			s.wal.Run(s.walStop)
		}
	}()
	go s.writer(wconn)
	go s.janitor()
	return s, nil
}

const walDDL = `CREATE TABLE IF NOT EXISTS sluice_wal (pos BIGINT);
INSERT INTO sluice_wal SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM sluice_wal)`

// replay loads the WAL records written after the position DuckDB has
// (acknowledged writes not yet loaded when the process stopped), then
// opens the WAL for appending after them.
func (s *Store) replay(ctx context.Context, c *sql.Conn) error {
	dir := filepath.Join(s.cfg.DataDir, "wal")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("duckdb store: create wal dir: %w", err)
	}
	var pos int64
	if err := c.QueryRowContext(ctx, "SELECT pos FROM sluice_wal").Scan(&pos); err != nil {
		return fmt.Errorf("duckdb store: read wal position: %w", err)
	}
	// The shard logs hold everything before pos durably (commit syncs
	// them first); what they have after it is cut and appended again
	// below, in WAL order, so cursors come out the same.
	if err := s.shards.Recover(pos); err != nil {
		return fmt.Errorf("duckdb store: %w", err)
	}
	s.mu.RLock()
	byID := map[int64]*logstore{}
	for _, ls := range s.logstores {
		byID[ls.id] = ls
	}
	s.mu.RUnlock()
	var (
		batch      []*writeReq
		rows       int
		replayed   int
		lost       int
		lastLoaded = pos
	)
	var commitErr error
	flush := func() {
		if len(batch) == 0 || commitErr != nil {
			return
		}
		if commitErr = s.commit(ctx, c, batch); commitErr == nil {
			lastLoaded = batch[len(batch)-1].end
		}
		batch, rows = nil, 0
	}
	end, err := wal.Read(dir, pos, s.log, func(r wal.Record) error {
		ls := byID[r.Logstore]
		if ls == nil {
			// Dropped after the write was acknowledged.
			for i := range r.Groups {
				lost += len(r.Groups[i].Logs)
			}
			batch = append(batch, &writeReq{end: r.End})
			return nil
		}
		req := &writeReq{end: r.End, lsID: ls.id, shard: r.Shard, ngroups: len(r.Groups)}
		raw := r.Raw
		if raw == nil {
			// An earlier version's record: re-framed, into shard 0.
			raw = wal.AppendRecord(nil, r.Logstore, r.Shard, r.Received, r.Groups)
		}
		es := []shardlog.Entry{{Key: shardlog.Key{Logstore: ls.id, Shard: r.Shard}, Record: raw, Groups: len(r.Groups), WALEnd: r.End}}
		if err := s.shards.Append(es); err != nil {
			return err
		}
		req.first = es[0].First
		var expired int
		req.parts, req.bytes, expired = buildRows(&s.pools, ls, ls.schema, retentionStart(ls.ttlDays, s.cfg.Now()), r.Groups, time.Unix(0, r.Received))
		s.m.expiredDropped.Add(float64(expired))
		req.nrows = req.rows()
		replayed += req.nrows
		batch = append(batch, req)
		rows += req.nrows
		if rows >= s.cfg.MaxBatchRows {
			flush()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("duckdb store: replay wal: %w", err)
	}
	flush()
	if commitErr != nil {
		return fmt.Errorf("duckdb store: replay wal: %w", commitErr)
	}
	s.m.loadFailed.Add(float64(lost))
	if replayed > 0 || lost > 0 {
		s.log.Info("loaded acknowledged writes from the WAL", "logs", replayed, "of_dropped_logstores", lost, "from", pos, "to", end)
	}
	s.lq.loaded, s.lq.lastEnd = max(lastLoaded, end), end
	w, err := wal.Open(wal.Config[*writeReq]{Dir: dir, Start: end, SyncEvery: s.cfg.SyncInterval, SegmentBytes: s.cfg.walSegmentBytes,
		OnSynced: s.synced, Done: func(r *writeReq, err error) { r.done <- err },
		SyncSeconds: s.m.walSyncSeconds, Acked: s.m.walWrites})
	if err != nil {
		return fmt.Errorf("duckdb store: %w", err)
	}
	s.wal = w
	if err := w.RemoveBelow(end); err != nil {
		s.log.Error("removing loaded WAL segments failed", "err", err)
	}
	return nil
}

const catalogDDL = `CREATE TABLE IF NOT EXISTS sluice_logstores (
	id BIGINT PRIMARY KEY, project VARCHAR, logstore VARCHAR,
	ttl_days INTEGER, index_json VARCHAR, columns_json VARCHAR)`

func (s *Store) init(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, catalogDDL); err != nil {
		return fmt.Errorf("duckdb store: create catalog: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, walDDL); err != nil {
		return fmt.Errorf("duckdb store: create wal position table: %w", err)
	}
	// Defense in depth for user SQL: no file access but to the segment
	// files, and no configuration changes from here on. All are
	// database-wide.
	segDir := filepath.Join(s.cfg.DataDir, segmentsDir) + string(filepath.Separator)
	if err := os.MkdirAll(segDir, 0o750); err != nil {
		return fmt.Errorf("duckdb store: create segment dir: %w", err)
	}
	allowed := quoteString(segDir)
	if s.sh != nil {
		allowed = ""
		for i, d := range s.sharedDirs() {
			if err := os.MkdirAll(d, 0o750); err != nil {
				return fmt.Errorf("duckdb store: %w", err)
			}
			if i > 0 {
				allowed += ", "
			}
			allowed += quoteString(d)
		}
	}
	for _, q := range []string{
		"SET allowed_directories = [" + allowed + "]",
		"SET enable_external_access = false",
		"SET parquet_metadata_cache = true",
		"SET max_temp_directory_size = " + quoteString(s.cfg.TempDirLimit),
		"SET lock_configuration = true",
	} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("duckdb store: %s: %w", q, err)
		}
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, project, logstore, ttl_days, index_json, columns_json FROM sluice_logstores")
	if err != nil {
		return fmt.Errorf("duckdb store: read catalog: %w", err)
	}
	defer rows.Close()
	byID := map[int64]*logstore{}
	for rows.Next() {
		var (
			ls               logstore
			idxJSON, colJSON string
			idx              *index.Config
			fields           []fieldColumn
		)
		if err := rows.Scan(&ls.id, &ls.key.project, &ls.key.logstore, &ls.ttlDays, &idxJSON, &colJSON); err != nil {
			return fmt.Errorf("duckdb store: read catalog: %w", err)
		}
		if err := json.Unmarshal([]byte(idxJSON), &idx); err != nil {
			return fmt.Errorf("duckdb store: catalog index of %s/%s: %w", ls.key.project, ls.key.logstore, err)
		}
		if err := json.Unmarshal([]byte(colJSON), &fields); err != nil {
			return fmt.Errorf("duckdb store: catalog columns of %s/%s: %w", ls.key.project, ls.key.logstore, err)
		}
		ls.schema = newSchema(idx, fields)
		ls.days = map[int32]bool{}
		ls.segs = map[int32][]*segment{}
		s.logstores[ls.key] = &ls
		byID[ls.id] = &ls
		s.nextID = max(s.nextID, ls.id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("duckdb store: read catalog: %w", err)
	}
	trows, err := s.db.QueryContext(ctx, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'")
	if err != nil {
		return fmt.Errorf("duckdb store: list partitions: %w", err)
	}
	defer trows.Close()
	for trows.Next() {
		var name string
		if err := trows.Scan(&name); err != nil {
			return fmt.Errorf("duckdb store: list partitions: %w", err)
		}
		if id, day, ok := parseTableName(name); ok && byID[id] != nil {
			byID[id].days[day] = true
		}
	}
	if err := trows.Err(); err != nil {
		return fmt.Errorf("duckdb store: list partitions: %w", err)
	}
	return s.loadSegments(ctx, byID)
}

// EnsureLogstore implements store.Store. Index changes add typed columns
// to every existing partition; existing rows get NULL in them (no
// backfill). A key whose type changes loses its old column.
func (s *Store) EnsureLogstore(ctx context.Context, spec store.LogstoreSpec) error {
	idxJSON, err := json.Marshal(spec.Index)
	if err != nil {
		return fmt.Errorf("duckdb store: encode index: %w", err)
	}
	if s.sh != nil {
		return s.ensureShared(ctx, spec, idxJSON)
	}
	return s.control(ctx, func(ctx context.Context, c *sql.Conn) error {
		key := lsKey{spec.Project, spec.Logstore}
		s.mu.RLock()
		ls := s.logstores[key]
		s.mu.RUnlock()
		var current []fieldColumn
		if ls != nil {
			current = ls.schema.fields
		}
		fields := desiredFields(current, spec.Index)
		colJSON, err := json.Marshal(fields)
		if err != nil {
			return fmt.Errorf("duckdb store: encode columns: %w", err)
		}
		if ls == nil {
			s.mu.Lock()
			s.nextID++
			id := s.nextID
			s.mu.Unlock()
			if _, err := c.ExecContext(ctx, "INSERT INTO sluice_logstores VALUES (?, ?, ?, ?, ?, ?)",
				id, spec.Project, spec.Logstore, spec.TTLDays, string(idxJSON), string(colJSON)); err != nil {
				return fmt.Errorf("duckdb store: create logstore %s/%s: %w", spec.Project, spec.Logstore, err)
			}
			s.mu.Lock()
			s.logstores[key] = &logstore{id: id, key: key, ttlDays: spec.TTLDays, schema: newSchema(spec.Index, fields), days: map[int32]bool{}, segs: map[int32][]*segment{}}
			s.mu.Unlock()
			return nil
		}
		if err := s.alterPartitions(ctx, c, ls, fields); err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, "UPDATE sluice_logstores SET ttl_days = ?, index_json = ?, columns_json = ? WHERE id = ?",
			spec.TTLDays, string(idxJSON), string(colJSON), ls.id); err != nil {
			return fmt.Errorf("duckdb store: update logstore %s/%s: %w", spec.Project, spec.Logstore, err)
		}
		s.mu.Lock()
		ls.ttlDays = spec.TTLDays
		ls.schema = newSchema(spec.Index, fields)
		s.mu.Unlock()
		return nil
	})
}

// alterPartitions makes every partition's field columns equal to fields.
// Runs on the writer goroutine, so no append races with it.
func (s *Store) alterPartitions(ctx context.Context, c *sql.Conn, ls *logstore, fields []fieldColumn) error {
	var stmts []string
	for _, f := range ls.schema.fields {
		if !slices.Contains(fields, f) {
			stmts = append(stmts, "DROP COLUMN "+quoteIdent(f.Key))
		}
	}
	for _, f := range fields {
		if !slices.Contains(ls.schema.fields, f) {
			stmts = append(stmts, "ADD COLUMN "+quoteIdent(f.Key)+" "+f.sqlType())
		}
	}
	if len(stmts) == 0 {
		return nil
	}
	s.mu.RLock()
	days := make([]int32, 0, len(ls.days))
	for d := range ls.days {
		days = append(days, d)
	}
	s.mu.RUnlock()
	for _, d := range days {
		for _, st := range stmts {
			q := "ALTER TABLE " + quoteIdent(tableName(ls.id, d)) + " " + st
			if _, err := c.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("duckdb store: %s: %w", q, err)
			}
		}
	}
	return nil
}

// DropLogstore implements store.Store.
func (s *Store) DropLogstore(ctx context.Context, project, logstore string) error {
	if s.sh != nil {
		return s.dropShared(ctx, project, logstore)
	}
	return s.control(ctx, func(ctx context.Context, c *sql.Conn) error {
		key := lsKey{project, logstore}
		s.mu.RLock()
		ls := s.logstores[key]
		s.mu.RUnlock()
		if ls == nil {
			return fmt.Errorf("duckdb store: drop %s/%s: %w", project, logstore, store.ErrLogstoreNotFound)
		}
		s.mu.Lock()
		delete(s.logstores, key)
		days, segs := ls.days, ls.segs
		ls.days, ls.segs = map[int32]bool{}, map[int32][]*segment{}
		s.mu.Unlock()
		var all []*segment
		for _, ss := range segs {
			all = append(all, ss...)
		}
		if err := s.removeSegments(ctx, c, ls.id, all); err != nil {
			return fmt.Errorf("duckdb store: drop %s/%s: %w", project, logstore, err)
		}
		for d := range days {
			if _, err := c.ExecContext(ctx, "DROP TABLE IF EXISTS "+quoteIdent(tableName(ls.id, d))); err != nil {
				return fmt.Errorf("duckdb store: drop partition of %s/%s: %w", project, logstore, err)
			}
		}
		if err := s.shards.Drop(ls.id); err != nil {
			return fmt.Errorf("duckdb store: drop %s/%s: %w", project, logstore, err)
		}
		if _, err := c.ExecContext(ctx, "DELETE FROM sluice_logstores WHERE id = ?", ls.id); err != nil {
			return fmt.Errorf("duckdb store: drop %s/%s: %w", project, logstore, err)
		}
		return nil
	})
}

// retentionStart returns the first day a logstore keeps (days before it
// are expired), or math.MinInt32 when it keeps everything.
func retentionStart(ttlDays int, now time.Time) int32 {
	if ttlDays <= 0 || ttlDays >= 3650 {
		return -1 << 31
	}
	return dayOf(now.Unix()) - int32(ttlDays) + 1
}

// EnforceRetention drops the day partitions of every logstore that are
// entirely older than its ttl. It runs periodically on its own; tests
// call it directly. Expired partitions are invisible to queries even
// before they are dropped.
func (s *Store) EnforceRetention(ctx context.Context) error {
	if s.sh != nil {
		return s.expireShared(ctx)
	}
	return s.control(ctx, func(ctx context.Context, c *sql.Conn) error {
		now := s.cfg.Now()
		type drop struct {
			ls  *logstore
			day int32
		}
		var drops []drop
		type segDrop struct {
			ls   *logstore
			day  int32
			segs []*segment
		}
		var segDrops []segDrop
		type shardDrop struct {
			ls     *logstore
			cutoff time.Time
		}
		var shardDrops []shardDrop
		s.mu.Lock()
		for _, ls := range s.logstores {
			if ls.ttlDays > 0 && ls.ttlDays < 3650 {
				// Shard logs keep groups by receive time, as the Log Service.
				shardDrops = append(shardDrops, shardDrop{ls, now.Add(-time.Duration(ls.ttlDays) * 24 * time.Hour)})
			}
			first := retentionStart(ls.ttlDays, now)
			for d := range ls.days {
				if d < first {
					drops = append(drops, drop{ls, d})
					delete(ls.days, d)
				}
			}
			for d, segs := range ls.segs {
				if d < first {
					segDrops = append(segDrops, segDrop{ls, d, segs})
					delete(ls.segs, d)
				}
			}
		}
		s.mu.Unlock()
		for _, d := range segDrops {
			if err := s.removeSegments(ctx, c, d.ls.id, d.segs); err != nil {
				return fmt.Errorf("duckdb store: drop expired segments: %w", err)
			}
			s.m.partitionsDropped.Inc()
			s.log.Info("dropped expired partition", "project", d.ls.key.project, "logstore", d.ls.key.logstore,
				"day", time.Unix(int64(d.day)*86400, 0).UTC().Format(time.DateOnly), "segments", len(d.segs))
		}
		for _, d := range shardDrops {
			n, err := s.shards.Retain(d.ls.id, d.cutoff.UnixNano())
			if err != nil {
				return fmt.Errorf("duckdb store: shard log retention: %w", err)
			}
			if n > 0 {
				s.log.Info("removed expired shard log files", "project", d.ls.key.project, "logstore", d.ls.key.logstore, "files", n)
			}
		}
		for _, d := range drops {
			if _, err := c.ExecContext(ctx, "DROP TABLE IF EXISTS "+quoteIdent(tableName(d.ls.id, d.day))); err != nil {
				return fmt.Errorf("duckdb store: drop expired partition %s: %w", tableName(d.ls.id, d.day), err)
			}
			s.m.partitionsDropped.Inc()
			s.log.Info("dropped expired partition", "project", d.ls.key.project, "logstore", d.ls.key.logstore,
				"day", time.Unix(int64(d.day)*86400, 0).UTC().Format(time.DateOnly))
		}
		return nil
	})
}

func (s *Store) janitor() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.EnforceRetention(context.Background()); err != nil && !errors.Is(err, errClosed) {
				s.log.Error("retention failed", "err", err)
			}
		}
	}
}

var errClosed = errors.New("duckdb store: closed")

// Close implements store.Store: it waits for queued writes to commit,
// checkpoints and closes the database. Safe to call more than once.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	s.closeMu.Unlock()
	// Acknowledge what was appended to the WAL, then load everything.
	close(s.walStop)
	<-s.walDone
	close(s.stopLoader)
	s.wg.Wait()
	s.queries.Wait()
	s.sweep(true)
	_, cerr := s.db.Exec("CHECKPOINT")
	var werr error
	if s.wal != nil {
		werr = s.wal.Close()
	}
	err := errors.Join(cerr, werr, s.shards.Close(), s.db.Close(), s.conn.Close())
	if err != nil {
		return fmt.Errorf("duckdb store: close: %w", err)
	}
	return nil
}

type metrics struct {
	rowsWritten       prometheus.Counter
	bytesWritten      prometheus.Counter
	commits           prometheus.Counter
	overloaded        prometheus.Counter
	partitionsDropped prometheus.Counter
	expiredDropped    prometheus.Counter
	loadFailed        prometheus.Counter

	segmentsWritten    prometheus.Counter
	compactions        prometheus.Counter
	compactionFailures prometheus.Counter

	walSyncSeconds prometheus.Histogram
	walWrites      prometheus.Counter

	queryMetrics

	groupCommitSeconds prometheus.Histogram
	commitFailures     prometheus.Counter
	resentGroups       prometheus.Counter
	orphansRemoved     prometheus.Counter
	shardMergeSeconds  prometheus.Histogram
	shardObjsMerged    prometheus.Counter
	shardRowsMerged    prometheus.Counter
	shardMergeFailures prometheus.Counter
	querySegments      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rowsWritten:       prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_rows_written_total", Help: "Log rows loaded into the store (segment files)."}),
		bytesWritten:      prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_bytes_written_total", Help: "Raw key/value bytes committed to the DuckDB store."}),
		commits:           prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_commits_total", Help: "Loads: transactions that record new segments and the WAL position."}),
		overloaded:        prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_overloaded_total", Help: "Writes rejected because the ingest queue was full."}),
		partitionsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_partitions_dropped_total", Help: "Day partitions dropped by retention."}),
		expiredDropped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_expired_logs_dropped_total", Help: "Written logs not stored because their time is already past the logstore's ttl."}),
		loadFailed:        prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_load_failed_logs_total", Help: "Acknowledged logs the loader could not move from the WAL into DuckDB (logstore deleted meanwhile, or a load error; each is logged)."}),

		segmentsWritten:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_segments_written_total", Help: "Parquet segment files written by loads."}),
		compactions:        prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_compactions_total", Help: "Merges of a day's small segments into one."}),
		compactionFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_compaction_failures_total", Help: "Merges of small segments that failed (logged; the segments stay)."}),

		// With request durability, wal_writes_total / wal_sync_seconds_count
		// is the writes per group-commit batch: how well it amortises the fsync.
		walSyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_store_wal_sync_seconds", Help: "Time of one fsync of the write-ahead log (one per batch with request durability, one per sync interval with async).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}),
		walWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_wal_writes_total", Help: "Writes acknowledged by the write-ahead log (fsynced, or with async durability written to the file)."}),

		groupCommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_store_group_commit_seconds", Help: "Shared storage: time of one group commit (write segments, upload, record in the catalog), after which its writes are acknowledged.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14)}),
		resentGroups:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_resent_groups_total", Help: "Shared storage: groups sent again after their commit (same __pack_id__ and content), acknowledged without being stored twice."}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_group_commit_failures_total", Help: "Shared storage: group commits that failed (object storage or catalog unavailable); their writes were refused with a retryable error."}),
		orphansRemoved: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_orphans_removed_total", Help: "Shared storage: uploaded segment objects never recorded in the catalog (their node died mid-commit), removed."}),
		shardMergeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_store_shard_merge_seconds", Help: "Shared storage: time of one merge of shard log objects into one (fetch, copy, upload, swap in the catalog); its count is the merges done.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		shardObjsMerged:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_shard_objects_merged_total", Help: "Shared storage: shard log objects replaced by merges (each deleted once its grave is due)."}),
		shardRowsMerged:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_shard_chunk_rows_merged_total", Help: "Shared storage: shard chunk rows (one per commit and shard) merges removed from the catalog by merging runs of them into one."}),
		shardMergeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_store_shard_merge_failures_total", Help: "Shared storage: merges of shard log objects that failed or found their chunks changed meanwhile (logged; the objects stay as they are)."}),

		querySegments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_store_query_segments_total", Help: "Shared storage: segments the time ranges of queries selected, by result: searched (fetched into the cache when the query reads them), or pruned (their statistics show no log can match the search: never fetched)."}, []string{"result"}),

		queryMetrics: newQueryMetrics(),
	}
	if reg != nil {
		cs := []prometheus.Collector{m.rowsWritten, m.bytesWritten, m.commits, m.overloaded, m.partitionsDropped, m.expiredDropped, m.loadFailed, m.segmentsWritten, m.compactions, m.compactionFailures, m.walSyncSeconds, m.walWrites,
			m.groupCommitSeconds, m.commitFailures, m.resentGroups, m.orphansRemoved, m.shardMergeSeconds, m.shardObjsMerged, m.shardRowsMerged, m.shardMergeFailures, m.querySegments}
		cs = append(cs, m.queryMetrics.collectors()...)
		cs = append(cs, memguardCollectors()...)
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("duckdb store: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
