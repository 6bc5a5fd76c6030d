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
// query that could have listed the segment has ended — on any node: each
// node registers its query timeout (store_nodes, renewed while it runs)
// and a grave waits for twice the longest registered, so nodes need not
// share --query-timeout. Segment ids come
// from a sequence, so nodes never collide. Leases use the database's
// clock (now()), so nodes' clocks need not agree.
//
// # Shards and cursors
//
// The Log Service's shards (GetCursor, PullLogs, consumer groups,
// GetContextLogs) need, per logstore shard, the groups in the order they
// were written, under cursors (0, 1, 2, ... one per group) that any node
// answers the same way, before and after any node restarts. On one node
// the store keeps them in local files fed by its WAL (server/store/shardlog);
// with shared storage there is no WAL, and a node's files would be
// invisible to the others, so the shard log is made of the same two
// shared parts as the segments:
//
//   - The bytes: each group commit writes, per logstore, one object
//     shardlog/ls<id>/<obj>.groups holding every shard's new groups as
//     LogGroupList entries, one zstd frame per shard (a PullLogs answer
//     is those bytes decompressed and cut, never re-encoded), uploaded in
//     parallel with the commit's segments.
//   - The order: per shard a chunk row in store_shard_chunks (cursor of
//     its first group, group count, receive time, object and byte range),
//     recorded in the commit's transaction. Cursors come from a counter
//     row per shard (store_shards.next), incremented in that transaction
//     and locked until it commits: commits from any node to a shard take
//     their cursors one after the other, and since a reader's snapshot
//     sees whole transactions it never sees a chunk without every chunk
//     before it. So cursors are dense, the same on every node, and a
//     write is in its shard exactly when its segments are searchable:
//     a node killed before the commit leaves neither (its objects are
//     orphans the sweep removes), after it, both.
//
// PullLogs from cursor c on any node: one query finds the shard's bounds
// and the chunks from the one holding c; the node fetches their objects
// through its read cache (the writing node already has them) and cuts
// the entries at c and at the limits. GetCursor by time finds the first
// chunk received at or after the time (receive time is a chunk's latest
// write's, so a cursor by time may start up to one commit interval
// early, never late). Consumer checkpoints are these cursors, stored in
// the metadata (server/meta/postgres), and consumer-group membership is
// in PostgreSQL too (server/consumer/pgconsumer).
//
// Retention is by receive time, as on one node: the maintenance node
// deletes the chunks received before the logstore's ttl and buries the
// objects no chunk names any more (deleted when the grave is due); the
// counter row stays, so a shard whose every chunk expired still goes on
// from its old end, and a cursor before the first retained chunk is out
// of range (400 InvalidCursor), as the Log Service answers. Compaction
// merges segments only; shard objects are merged separately (below).
//
// # Merging shard objects
//
// Every commit leaves one small shard object per logstore written (about
// five a second per node) and one chunk row per shard written, which
// would pile up until retention: millions of objects per logstore a
// month, and as many rows per shard, which every ShardSeek scans. The
// maintenance node (the same lease as compaction, so one node at a time)
// merges them: the objects of one logstore whose chunks were received in
// one time window (Shared.ShardMergeAge, 10 minutes, aligned on the
// epoch) become one, once the window has been over for ShardMergeAge.
// Which chunks are not merged yet is a column (store_shard_chunks.merged)
// with a partial index, so finding them reads only recent rows. The node
// fetches the objects, copies each chunk's compressed bytes unchanged into
// one new object (grouped by shard, in cursor order), each run of a
// shard's chunks with consecutive cursors (up to 256 KiB) framed as one
// merged chunk whose frames keep each commit's group count and receive
// time, uploads it, and then, in one transaction, deletes the chunks of
// the old objects, checks they were exactly the ones it copied
// (retention, a drop or another node's merge meanwhile voids the merge:
// duckdb.ErrConflict, the upload is deleted), inserts the merged chunks
// (First the run's first cursor, Groups their sum, Received the latest,
// Off/Len spanning the run) and buries the old objects as graves. No
// cursor changes: a merged chunk covers exactly its run's cursors, so a
// cursor a consumer holds reads the same bytes before and after (PullLogs
// skips the frames before it undecompressed), and GetCursor by time and
// GetCursorTime read a merged chunk's frames to answer per commit, as
// before the merge. Retention goes by a chunk's Received, so a merged
// chunk is kept until its latest commit expires (up to a window longer).
// A reader that listed the old chunks before the swap still finds their
// objects, deleted only when the grave is due (2×QueryTimeout +
// GraveDelay), as replaced segments are. A node that dies between the
// upload and the swap leaves an object no chunk names, removed by the
// orphan sweep. A window with a single unmerged object (a commit delayed
// past the window) is only marked merged; one merge takes at most 1,000
// objects and 16 MiB, so a busy window may become a few objects, and a
// run split by them, by a commit received in another window (cursors not
// consecutive within the window) or by the 256 KiB bound a few chunks. ShardChunks
// reports which chunks are merged: PullLogs reads those by byte range (a
// merged object holds every shard's chunks of many commits, far more
// than one pull needs) and fetches a commit's small object whole into the
// read cache, as before. Metrics: sluice_store_shard_merge_seconds (its
// count is the merges), sluice_store_shard_objects_merged_total (objects
// replaced), sluice_store_shard_chunk_rows_merged_total (chunk rows
// removed) and sluice_store_shard_merge_failures_total; figures in
// docs/benchmarks.md.
package pgcatalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluicelog/sluice/internal/pglease"
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
	// Shard logs (see the package documentation, "Shards and cursors").
	`CREATE TABLE store_shards (
		ls_id bigint NOT NULL REFERENCES store_logstores (id) ON DELETE CASCADE, shard integer NOT NULL,
		next bigint NOT NULL, PRIMARY KEY (ls_id, shard));
	CREATE TABLE store_shard_chunks (
		ls_id bigint NOT NULL REFERENCES store_logstores (id) ON DELETE CASCADE, shard integer NOT NULL,
		first bigint NOT NULL, groups integer NOT NULL, received bigint NOT NULL,
		obj bigint NOT NULL, off bigint NOT NULL, len bigint NOT NULL,
		PRIMARY KEY (ls_id, shard, first));
	CREATE INDEX store_shard_chunks_obj ON store_shard_chunks (obj);`,
	// Merging shard objects ("Merging shard objects" in the package
	// documentation): chunks not yet merged, found by receive time.
	`ALTER TABLE store_shard_chunks ADD COLUMN merged boolean NOT NULL DEFAULT false;
	CREATE INDEX store_shard_chunks_unmerged ON store_shard_chunks (received) WHERE NOT merged;`,
	// Nodes and their query timeouts, for how long graves are kept.
	`CREATE TABLE store_nodes (node text PRIMARY KEY, query_timeout_ms bigint NOT NULL, expires timestamptz NOT NULL);`,
	// Segment statistics (duckdb.SegmentRecord.Stats): '' for the
	// segments written before, which queries always read.
	`ALTER TABLE store_segments ADD COLUMN stats_json text NOT NULL DEFAULT '';`,
	// Pack keys of committed groups, for re-sends ("Sent twice").
	`CREATE TABLE store_packs (
		ls_id bigint NOT NULL REFERENCES store_logstores (id) ON DELETE CASCADE,
		pack_id text NOT NULL, digest bigint NOT NULL, committed timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (ls_id, pack_id, digest));
	CREATE INDEX store_packs_committed ON store_packs (committed);`,
}

// nodesLock is the advisory lock between registering a node (exclusive)
// and burying objects (shared): see graveDue.
const nodesLock int64 = 0x5e7ce_9a7e5

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

// graveDue is when objects buried in tx may be deleted: hold.Delay plus
// twice the longest query timeout of the removing node and of every node
// registered, from now (the database's clock). A node that registers
// while tx runs waits for tx's commit (the advisory lock) before it
// serves a query, so its queries never list what tx removes; a node
// registered before is counted here.
func graveDue(ctx context.Context, tx pgx.Tx, hold duckdb.Hold) (time.Time, error) {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", nodesLock); err != nil {
		return time.Time{}, err
	}
	var due time.Time
	err := tx.QueryRow(ctx, `SELECT clock_timestamp() + ($1 + 2 * greatest($2, max(query_timeout_ms))) * interval '1 millisecond'
		FROM store_nodes WHERE expires > now()`, hold.Delay.Milliseconds(), hold.QueryTimeout.Milliseconds()).Scan(&due)
	return due, err
}

// RegisterNode implements duckdb.Catalog. A renewal with the same timeout
// only moves the expiry; a new node or timeout takes the nodes lock (see
// graveDue) and removes expired registrations.
func (c *Catalog) RegisterNode(ctx context.Context, n duckdb.NodeRecord) error {
	tag, err := c.pool.Exec(ctx, `UPDATE store_nodes SET expires = now() + $3 * interval '1 millisecond'
		WHERE node = $1 AND query_timeout_ms = $2`, n.Name, n.QueryTimeout.Milliseconds(), n.TTL.Milliseconds())
	if err != nil || tag.RowsAffected() > 0 {
		return err
	}
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", nodesLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO store_nodes (node, query_timeout_ms, expires)
			VALUES ($1, $2, now() + $3 * interval '1 millisecond')
			ON CONFLICT (node) DO UPDATE SET query_timeout_ms = EXCLUDED.query_timeout_ms, expires = EXCLUDED.expires`,
			n.Name, n.QueryTimeout.Milliseconds(), n.TTL.Milliseconds()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM store_nodes WHERE expires < now()")
		return err
	})
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

// buryShardObjects records graves for the shard objects of logstore
// lsID among objs that no chunk names any more.
func buryShardObjects(ctx context.Context, tx pgx.Tx, due time.Time, lsID int64, objs []int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO store_graves (key, segment_id, due)
		SELECT '`+shardPrefix+`/ls' || $2::bigint || '/' || o || '.groups', o, $1 FROM unnest($3::bigint[]) AS o
		WHERE NOT EXISTS (SELECT 1 FROM store_shard_chunks c WHERE c.obj = o)
		ON CONFLICT (key) DO NOTHING`, due, lsID, objs)
	return err
}

// shardPrefix is duckdb's shard object key prefix (duckdb.ShardObjectKey).
const shardPrefix = "shardlog"

// DropLogstore implements duckdb.Catalog.
func (c *Catalog) DropLogstore(ctx context.Context, id int64, hold duckdb.Hold) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		due, err := graveDue(ctx, tx, hold)
		if err != nil {
			return err
		}
		if err := bury(ctx, tx, due, "ls_id = $2", id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "DELETE FROM store_shard_chunks WHERE ls_id = $1 RETURNING obj", id)
		if err != nil {
			return err
		}
		objs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if err := buryShardObjects(ctx, tx, due, id, objs); err != nil {
			return err
		}
		// Segments and shard counters go with the logstore (ON DELETE CASCADE).
		_, err = tx.Exec(ctx, "DELETE FROM store_logstores WHERE id = $1", id)
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

// AddSegments implements duckdb.Catalog. Each shard's counter row is
// locked until the transaction commits, so commits to one shard from any
// node take their cursors one after the other, and a reader (whose
// snapshot sees whole transactions) never sees a chunk without every
// chunk before it.
func (c *Catalog) AddSegments(ctx context.Context, segs []duckdb.SegmentRecord, chunks []duckdb.ShardChunk, packs []duckdb.PackKey) error {
	if len(segs) == 0 && len(chunks) == 0 && len(packs) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		// The pack keys first: a conflict (another node committed one of
		// these groups meanwhile) then ends the transaction before it
		// takes the shards' locks.
		if err := addPacks(ctx, tx, packs); err != nil {
			return err
		}
		if err := addSegments(ctx, tx, segs); err != nil {
			return err
		}
		return addChunks(ctx, tx, chunks)
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" {
		return fmt.Errorf("record segments: %w (dropped meanwhile)", store.ErrLogstoreNotFound)
	}
	return err
}

// addPacks records the pack keys, failing with duckdb.ErrConflict if one
// is recorded already.
func addPacks(ctx context.Context, tx pgx.Tx, packs []duckdb.PackKey) error {
	if len(packs) == 0 {
		return nil
	}
	ls, id, digest := make([]int64, len(packs)), make([]string, len(packs)), make([]int64, len(packs))
	for i, p := range packs {
		ls[i], id[i], digest[i] = p.Logstore, p.ID, p.Digest
	}
	tag, err := tx.Exec(ctx, `INSERT INTO store_packs (ls_id, pack_id, digest)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING`, ls, id, digest)
	if err != nil {
		return err
	}
	if n := tag.RowsAffected(); n != int64(len(packs)) {
		return fmt.Errorf("record pack keys: %d of %d committed meanwhile by another node: %w", int64(len(packs))-n, len(packs), duckdb.ErrConflict)
	}
	return nil
}

// CommittedPacks implements duckdb.Catalog.
func (c *Catalog) CommittedPacks(ctx context.Context, keys []duckdb.PackKey) (map[duckdb.PackKey]bool, error) {
	ls, id, digest := make([]int64, len(keys)), make([]string, len(keys)), make([]int64, len(keys))
	for i, p := range keys {
		ls[i], id[i], digest[i] = p.Logstore, p.ID, p.Digest
	}
	rows, err := c.pool.Query(ctx, `SELECT p.ls_id, p.pack_id, p.digest
		FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS k (ls_id, pack_id, digest)
		JOIN store_packs p USING (ls_id, pack_id, digest)`, ls, id, digest)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (duckdb.PackKey, error) {
		var k duckdb.PackKey
		return k, r.Scan(&k.Logstore, &k.ID, &k.Digest)
	})
	if err != nil {
		return nil, err
	}
	known := make(map[duckdb.PackKey]bool, len(found))
	for _, k := range found {
		known[k] = true
	}
	return known, nil
}

// ForgetPacks implements duckdb.Catalog.
func (c *Catalog) ForgetPacks(ctx context.Context, age time.Duration, maxN int) (int, error) {
	tag, err := c.pool.Exec(ctx, `DELETE FROM store_packs WHERE ctid = ANY (ARRAY (
		SELECT ctid FROM store_packs WHERE committed < now() - $1 * interval '1 millisecond' LIMIT $2))`,
		age.Milliseconds(), maxN)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func addSegments(ctx context.Context, tx pgx.Tx, segs []duckdb.SegmentRecord) error {
	if len(segs) == 0 {
		return nil
	}
	n := len(segs)
	id, ls, day := make([]int64, n), make([]int64, n), make([]int32, n)
	rowsN, bytesN, minT, maxT := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	fields, stats := make([]string, n), make([]string, n)
	for i, s := range segs {
		id[i], ls[i], day[i], rowsN[i], bytesN[i], minT[i], maxT[i], fields[i] = s.ID, s.Logstore, s.Day, s.Rows, s.Bytes, s.MinTime, s.MaxTime, s.Fields
		stats[i] = s.Stats
	}
	_, err := tx.Exec(ctx, `INSERT INTO store_segments (`+segmentCols+`)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::integer[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::text[])`,
		id, ls, day, rowsN, bytesN, minT, maxT, fields, stats)
	return err
}

// addChunks takes each chunk's cursors from its shard's counter (in
// logstore and shard order, so that two nodes' commits never wait on
// each other's locks in a cycle) and records the chunks.
func addChunks(ctx context.Context, tx pgx.Tx, chunks []duckdb.ShardChunk) error {
	if len(chunks) == 0 {
		return nil
	}
	order := make([]int, len(chunks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(chunks[a].Logstore, chunks[b].Logstore), cmp.Compare(chunks[a].Shard, chunks[b].Shard))
	})
	for _, i := range order {
		ch := &chunks[i]
		var next int64
		if err := tx.QueryRow(ctx, `INSERT INTO store_shards (ls_id, shard, next) VALUES ($1, $2, $3)
			ON CONFLICT (ls_id, shard) DO UPDATE SET next = store_shards.next + EXCLUDED.next
			RETURNING next`, ch.Logstore, ch.Shard, ch.Groups).Scan(&next); err != nil {
			return err
		}
		ch.First = next - int64(ch.Groups)
	}
	return insertChunks(ctx, tx, chunks)
}

// insertChunks records chunks (merged as each says).
func insertChunks(ctx context.Context, tx pgx.Tx, chunks []duckdb.ShardChunk) error {
	n := len(chunks)
	ls, shard, first, groups := make([]int64, n), make([]int32, n), make([]int64, n), make([]int32, n)
	recv, obj, off, ln := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	merged := make([]bool, n)
	for i, ch := range chunks {
		ls[i], shard[i], first[i], groups[i] = ch.Logstore, int32(ch.Shard), ch.First, int32(ch.Groups)
		recv[i], obj[i], off[i], ln[i], merged[i] = ch.Received, ch.Object, ch.Off, ch.Len, ch.Merged
	}
	_, err := tx.Exec(ctx, `INSERT INTO store_shard_chunks (ls_id, shard, first, groups, received, obj, off, len, merged)
		SELECT * FROM unnest($1::bigint[], $2::integer[], $3::bigint[], $4::integer[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::boolean[])`,
		ls, shard, first, groups, recv, obj, off, ln, merged)
	return err
}

// ShardChunks implements duckdb.Catalog. One snapshot (a single
// statement) gives the bounds and the chunks, so they agree.
func (c *Catalog) ShardChunks(ctx context.Context, lsID int64, shard int, from int64, maxN int) (begin, end int64, chunks []duckdb.ShardChunk, err error) {
	rows, err := c.pool.Query(ctx, `WITH s AS (SELECT next FROM store_shards WHERE ls_id = $1 AND shard = $2),
			b AS (SELECT min(first) AS begin FROM store_shard_chunks WHERE ls_id = $1 AND shard = $2),
			start AS (SELECT max(first) AS first FROM store_shard_chunks WHERE ls_id = $1 AND shard = $2 AND first <= $3)
		SELECT coalesce(b.begin, s.next), s.next, c.first, c.groups, c.received, c.obj, c.off, c.len, c.merged
		FROM s CROSS JOIN b LEFT JOIN LATERAL (
			SELECT * FROM store_shard_chunks c WHERE c.ls_id = $1 AND c.shard = $2
				AND c.first >= (SELECT first FROM start) AND $3 < s.next
			ORDER BY c.first LIMIT $4) c ON true`, lsID, shard, from, maxN)
	if err != nil {
		return 0, 0, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			ch                     duckdb.ShardChunk
			cf, cg, cr, co, cn, cl *int64
			cm                     *bool
		)
		if err := rows.Scan(&begin, &end, &cf, &cg, &cr, &co, &cn, &cl, &cm); err != nil {
			return 0, 0, nil, err
		}
		if cf == nil {
			continue
		}
		ch.Logstore, ch.Shard, ch.First, ch.Groups, ch.Received, ch.Object, ch.Off, ch.Len = lsID, shard, *cf, int(*cg), *cr, *co, *cn, *cl
		ch.Merged = *cm
		chunks = append(chunks, ch)
	}
	return begin, end, chunks, rows.Err()
}

// ShardSeek implements duckdb.Catalog.
func (c *Catalog) ShardSeek(ctx context.Context, lsID int64, shard int, t int64) (duckdb.ShardChunk, error) {
	ch := duckdb.ShardChunk{Logstore: lsID, Shard: shard}
	var (
		cf, cg, cr, co, cn, cl *int64
		cm                     *bool
	)
	err := c.pool.QueryRow(ctx, `SELECT s.next, c.first, c.groups, c.received, c.obj, c.off, c.len, c.merged
		FROM store_shards s LEFT JOIN LATERAL (
			SELECT * FROM store_shard_chunks c WHERE c.ls_id = $1 AND c.shard = $2 AND c.received >= $3
			ORDER BY c.first LIMIT 1) c ON true
		WHERE s.ls_id = $1 AND s.shard = $2`, lsID, shard, t).Scan(&ch.First, &cf, &cg, &cr, &co, &cn, &cl, &cm)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && cf == nil {
		return ch, nil // the end (0 for a shard never written)
	}
	if err != nil {
		return ch, err
	}
	ch.First, ch.Groups, ch.Received, ch.Object, ch.Off, ch.Len, ch.Merged = *cf, int(*cg), *cr, *co, *cn, *cl, *cm
	return ch, nil
}

// ExpireShards implements duckdb.Catalog. The shard's counter stays, so
// its cursors continue after everything has expired.
func (c *Catalog) ExpireShards(ctx context.Context, lsID int64, cutoff int64, hold duckdb.Hold) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "DELETE FROM store_shard_chunks WHERE ls_id = $1 AND received < $2 RETURNING obj", lsID, cutoff)
		if err != nil {
			return err
		}
		objs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		n = len(objs)
		if n == 0 {
			return nil
		}
		due, err := graveDue(ctx, tx, hold)
		if err != nil {
			return err
		}
		return buryShardObjects(ctx, tx, due, lsID, objs)
	})
	return n, err
}

// ShardMergeCandidates implements duckdb.Catalog. The partial index on
// unmerged chunks keeps both steps small: only chunks younger than about
// two windows (and stragglers) are not merged.
func (c *Catalog) ShardMergeCandidates(ctx context.Context, window, cutoff int64, maxObjects int) ([]duckdb.ShardChunk, error) {
	rows, err := c.pool.Query(ctx, `WITH w AS (
			SELECT ls_id, received / $1 AS w FROM store_shard_chunks
			WHERE NOT merged AND received < $2 ORDER BY received LIMIT 1),
		o AS (
			SELECT DISTINCT c.obj FROM store_shard_chunks c, w
			WHERE NOT c.merged AND c.ls_id = w.ls_id AND c.received >= w.w * $1 AND c.received < (w.w + 1) * $1
			ORDER BY c.obj LIMIT $3)
		SELECT ls_id, shard, first, groups, received, obj, off, len FROM store_shard_chunks
		WHERE obj IN (SELECT obj FROM o) ORDER BY obj, off`, window, cutoff, maxObjects)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (duckdb.ShardChunk, error) {
		var ch duckdb.ShardChunk
		var shard, groups int32
		err := r.Scan(&ch.Logstore, &shard, &ch.First, &groups, &ch.Received, &ch.Object, &ch.Off, &ch.Len)
		ch.Shard, ch.Groups = int(shard), int(groups)
		return ch, err
	})
}

// ReplaceShardObjects implements duckdb.Catalog. The merged chunks cover
// exactly the cursors of the chunks they replace, so a cursor any
// consumer holds reads the same groups.
func (c *Catalog) ReplaceShardObjects(ctx context.Context, lsID int64, old []int64, in, out []duckdb.ShardChunk, hold duckdb.Hold) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		// Deleting locks the chunks: retention or a drop waits, or has
		// already removed some (then this merge is void), as has another
		// merge.
		rows, err := tx.Query(ctx, "DELETE FROM store_shard_chunks WHERE ls_id = $1 AND obj = ANY($2) RETURNING shard, first", lsID, old)
		if err != nil {
			return err
		}
		type key struct {
			shard int32
			first int64
		}
		gone, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (key, error) {
			var k key
			err := r.Scan(&k.shard, &k.first)
			return k, err
		})
		if err != nil {
			return err
		}
		if len(gone) != len(in) {
			return duckdb.ErrConflict
		}
		want := make(map[key]bool, len(in))
		for _, ch := range in {
			want[key{int32(ch.Shard), ch.First}] = true
		}
		for _, k := range gone {
			if !want[k] {
				return duckdb.ErrConflict
			}
		}
		merged := slices.Clone(out)
		for i := range merged {
			merged[i].Merged = true
		}
		if err := insertChunks(ctx, tx, merged); err != nil {
			return err
		}
		due, err := graveDue(ctx, tx, hold)
		if err != nil {
			return err
		}
		return buryShardObjects(ctx, tx, due, lsID, old)
	})
}

func collectSegments(rows pgx.Rows, err error) ([]duckdb.SegmentRecord, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (duckdb.SegmentRecord, error) {
		var s duckdb.SegmentRecord
		err := r.Scan(&s.ID, &s.Logstore, &s.Day, &s.Rows, &s.Bytes, &s.MinTime, &s.MaxTime, &s.Fields, &s.Stats)
		return s, err
	})
}

const segmentCols = "id, ls_id, day, rows, bytes, min_time, max_time, fields_json, stats_json"

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
func (c *Catalog) ReplaceSegments(ctx context.Context, old []int64, seg duckdb.SegmentRecord, hold duckdb.Hold) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		due, err := graveDue(ctx, tx, hold)
		if err != nil {
			return err
		}
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
		_, err = tx.Exec(ctx, `INSERT INTO store_segments (`+segmentCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			seg.ID, seg.Logstore, seg.Day, seg.Rows, seg.Bytes, seg.MinTime, seg.MaxTime, seg.Fields, seg.Stats)
		return err
	})
}

// ExpireDays implements duckdb.Catalog.
func (c *Catalog) ExpireDays(ctx context.Context, lsID int64, day int32, hold duckdb.Hold) (int, error) {
	var n int64
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		due, err := graveDue(ctx, tx, hold)
		if err != nil {
			return err
		}
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
		UNION SELECT segment_id FROM store_graves WHERE segment_id = ANY($1)
		UNION SELECT obj FROM store_shard_chunks WHERE obj = ANY($1)`, ids)
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
	return pglease.TryLease(ctx, c.pool, "store_leases", name, holder, ttl)
}
