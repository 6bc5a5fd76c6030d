// Package pgcatalog is the log store's shared catalog on PostgreSQL
// (duckdb.Catalog): which logstores exist and which Parquet segments in
// object storage hold their logs, for every sluice-server node at once.
// It lives beside the metadata (server/meta/postgres) in the same
// database.
//
// A segment is visible once its row is committed, so a node killed after
// uploading but before committing leaves only an object no row names
// (removed by the maintenance node's orphan sweep), never a half-visible
// segment. Removed segments (compaction, retention, a dropped logstore)
// leave a grave: their object is deleted once the grave is due, after any
// query that could have listed the segment has ended. Segment ids come
// from a sequence, so nodes never collide. Leases use the database's
// clock (now()), so nodes' clocks need not agree.
package pgcatalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluicelog/sluice/internal/pgschema"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
)

var migrations = []string{
	`CREATE TABLE store_logstores (
		id bigserial PRIMARY KEY, project text NOT NULL, logstore text NOT NULL,
		ttl_days integer NOT NULL, index_json text NOT NULL, columns_json text NOT NULL,
		UNIQUE (project, logstore));
	CREATE SEQUENCE store_segment_ids;
	CREATE TABLE store_segments (
		id bigint PRIMARY KEY, ls_id bigint NOT NULL REFERENCES store_logstores (id) ON DELETE CASCADE,
		day integer NOT NULL, rows bigint NOT NULL, bytes bigint NOT NULL,
		min_time bigint NOT NULL, max_time bigint NOT NULL, fields_json text NOT NULL,
		created timestamptz NOT NULL DEFAULT now());
	CREATE INDEX store_segments_ls_day ON store_segments (ls_id, day);
	CREATE TABLE store_graves (key text PRIMARY KEY, segment_id bigint NOT NULL, due timestamptz NOT NULL);
	CREATE INDEX store_graves_due ON store_graves (due);
	CREATE INDEX store_graves_segment ON store_graves (segment_id);
	CREATE TABLE store_leases (name text PRIMARY KEY, holder text NOT NULL, expires timestamptz NOT NULL);`,
}

// Catalog is the PostgreSQL catalog.
type Catalog struct {
	pool *pgxpool.Pool
}

var _ duckdb.Catalog = (*Catalog)(nil)

// Open migrates the catalog's schema in the pool's database. The pool
// stays the caller's.
func Open(ctx context.Context, pool *pgxpool.Pool) (*Catalog, error) {
	if err := pgschema.Migrate(ctx, pool, "store", migrations); err != nil {
		return nil, fmt.Errorf("segment catalog: %w", err)
	}
	return &Catalog{pool: pool}, nil
}

// Logstores implements duckdb.Catalog.
func (c *Catalog) Logstores(ctx context.Context) ([]duckdb.LogstoreRecord, error) {
	rows, err := c.pool.Query(ctx, "SELECT id, project, logstore, ttl_days, index_json, columns_json FROM store_logstores")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (duckdb.LogstoreRecord, error) {
		var l duckdb.LogstoreRecord
		err := r.Scan(&l.ID, &l.Project, &l.Logstore, &l.TTLDays, &l.Index, &l.Columns)
		return l, err
	})
}

// PutLogstore implements duckdb.Catalog.
func (c *Catalog) PutLogstore(ctx context.Context, l duckdb.LogstoreRecord) (int64, error) {
	var id int64
	err := c.pool.QueryRow(ctx, `INSERT INTO store_logstores (project, logstore, ttl_days, index_json, columns_json)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (project, logstore) DO UPDATE SET ttl_days = EXCLUDED.ttl_days,
			index_json = EXCLUDED.index_json, columns_json = EXCLUDED.columns_json
		RETURNING id`, l.Project, l.Logstore, l.TTLDays, l.Index, l.Columns).Scan(&id)
	return id, err
}

// bury records graves for the segments selected by where (with args) in
// tx, to be deleted at due.
func bury(ctx context.Context, tx pgx.Tx, due time.Time, where string, args ...any) error {
	args = append([]any{due}, args...)
	_, err := tx.Exec(ctx, `INSERT INTO store_graves (key, segment_id, due)
		SELECT 'segments/ls' || ls_id || '/' || id || '.parquet', id, $1 FROM store_segments WHERE `+where+`
		ON CONFLICT (key) DO NOTHING`, args...)
	return err
}

// DropLogstore implements duckdb.Catalog.
func (c *Catalog) DropLogstore(ctx context.Context, id int64, due time.Time) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if err := bury(ctx, tx, due, "ls_id = $2", id); err != nil {
			return err
		}
		// Segments go with the logstore (ON DELETE CASCADE).
		_, err := tx.Exec(ctx, "DELETE FROM store_logstores WHERE id = $1", id)
		return err
	})
}

// NewSegmentIDs implements duckdb.Catalog.
func (c *Catalog) NewSegmentIDs(ctx context.Context, n int) ([]int64, error) {
	rows, err := c.pool.Query(ctx, "SELECT nextval('store_segment_ids') FROM generate_series(1, $1)", n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// AddSegments implements duckdb.Catalog.
func (c *Catalog) AddSegments(ctx context.Context, segs []duckdb.SegmentRecord) error {
	if len(segs) == 0 {
		return nil
	}
	n := len(segs)
	id, ls, day := make([]int64, n), make([]int64, n), make([]int32, n)
	rowsN, bytesN, minT, maxT := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	fields := make([]string, n)
	for i, s := range segs {
		id[i], ls[i], day[i], rowsN[i], bytesN[i], minT[i], maxT[i], fields[i] = s.ID, s.Logstore, s.Day, s.Rows, s.Bytes, s.MinTime, s.MaxTime, s.Fields
	}
	_, err := c.pool.Exec(ctx, `INSERT INTO store_segments (id, ls_id, day, rows, bytes, min_time, max_time, fields_json)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::integer[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[])`,
		id, ls, day, rowsN, bytesN, minT, maxT, fields)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" {
		return fmt.Errorf("record segments: %w (dropped meanwhile)", store.ErrLogstoreNotFound)
	}
	return err
}

func collectSegments(rows pgx.Rows, err error) ([]duckdb.SegmentRecord, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (duckdb.SegmentRecord, error) {
		var s duckdb.SegmentRecord
		err := r.Scan(&s.ID, &s.Logstore, &s.Day, &s.Rows, &s.Bytes, &s.MinTime, &s.MaxTime, &s.Fields)
		return s, err
	})
}

const segmentCols = "id, ls_id, day, rows, bytes, min_time, max_time, fields_json"

// Segments implements duckdb.Catalog.
func (c *Catalog) Segments(ctx context.Context, lsID int64, firstDay, lastDay int32, from, to int64) ([]duckdb.SegmentRecord, error) {
	return collectSegments(c.pool.Query(ctx, `SELECT `+segmentCols+` FROM store_segments
		WHERE ls_id = $1 AND day BETWEEN $2 AND $3 AND max_time >= $4 AND min_time < $5
		ORDER BY day, id`, lsID, firstDay, lastDay, from, to))
}

// SmallSegments implements duckdb.Catalog.
func (c *Catalog) SmallSegments(ctx context.Context, below int64, minN, maxN int) ([]duckdb.SegmentRecord, error) {
	return collectSegments(c.pool.Query(ctx, `WITH g AS (
			SELECT ls_id, day, fields_json FROM store_segments WHERE rows < $1
			GROUP BY ls_id, day, fields_json HAVING count(*) >= $2 LIMIT 1)
		SELECT `+segmentCols+` FROM store_segments s
		WHERE rows < $1 AND (s.ls_id, s.day, s.fields_json) = (SELECT ls_id, day, fields_json FROM g)
		ORDER BY id LIMIT $3`, below, minN, maxN))
}

// ReplaceSegments implements duckdb.Catalog.
func (c *Catalog) ReplaceSegments(ctx context.Context, old []int64, seg duckdb.SegmentRecord, due time.Time) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		// Lock the inputs: a concurrent retention or drop waits, or has
		// already removed some (then this merge is void).
		rows, err := tx.Query(ctx, "SELECT id FROM store_segments WHERE id = ANY($1) FOR UPDATE", old)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if len(found) != len(old) {
			return duckdb.ErrConflict
		}
		if err := bury(ctx, tx, due, "id = ANY($2)", old); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM store_segments WHERE id = ANY($1)", old); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO store_segments (`+segmentCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			seg.ID, seg.Logstore, seg.Day, seg.Rows, seg.Bytes, seg.MinTime, seg.MaxTime, seg.Fields)
		return err
	})
}

// ExpireDays implements duckdb.Catalog.
func (c *Catalog) ExpireDays(ctx context.Context, lsID int64, day int32, due time.Time) (int, error) {
	var n int64
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if err := bury(ctx, tx, due, "ls_id = $2 AND day < $3", lsID, day); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM store_segments WHERE ls_id = $1 AND day < $2", lsID, day)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

// DueGraves implements duckdb.Catalog.
func (c *Catalog) DueGraves(ctx context.Context, maxN int) ([]string, error) {
	rows, err := c.pool.Query(ctx, "SELECT key FROM store_graves WHERE due <= now() ORDER BY due LIMIT $1", maxN)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ForgetGraves implements duckdb.Catalog.
func (c *Catalog) ForgetGraves(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := c.pool.Exec(ctx, "DELETE FROM store_graves WHERE key = ANY($1)", keys)
	return err
}

// Known implements duckdb.Catalog.
func (c *Catalog) Known(ctx context.Context, ids []int64) (map[int64]bool, error) {
	rows, err := c.pool.Query(ctx, `SELECT id FROM store_segments WHERE id = ANY($1)
		UNION SELECT segment_id FROM store_graves WHERE segment_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	out := make(map[int64]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, err
}

// TryLease implements duckdb.Catalog.
func (c *Catalog) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	var got string
	err := c.pool.QueryRow(ctx, `INSERT INTO store_leases (name, holder, expires)
		VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires
			WHERE store_leases.holder = EXCLUDED.holder OR store_leases.expires < now()
		RETURNING holder`, name, holder, ttl.Milliseconds()).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil && got == holder, err
}
