package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	duck "github.com/duckdb/duckdb-go/v2"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
)

// writeReq is one accepted Write: its rows wait in memory for the
// loader, its record is in the WAL up to end.
type writeReq struct {
	parts []part
	bytes int64
	nrows int
	end   int64 // WAL position after its record
	done  chan error
}

// part is the rows of one Write for one day partition. rows is flat:
// len(fixedColumns)+len(schema.fields) values per row.
type part struct {
	ls     *logstore
	schema *schema
	day    int32
	rows   []driver.Value
}

func (p *part) stride() int { return nFixed + len(p.schema.fields) }

type ctlJob struct {
	fn   func(context.Context, *sql.Conn) error
	done chan error
}

// Write implements store.Store. The groups are converted to rows on the
// caller's goroutine (so conversion scales with concurrent requests) and
// encoded as one WAL record; Write returns once the WAL flusher has
// fsynced that record (group commit with the other writes appended
// meanwhile). The loader moves the rows into DuckDB later, in large
// batches (see the package documentation).
func (s *Store) Write(ctx context.Context, project, logstore string, groups []protocol.LogGroup, received time.Time) error {
	s.mu.RLock()
	ls := s.logstores[lsKey{project, logstore}]
	var (
		sch   *schema
		first int32
	)
	if ls != nil {
		sch, first = ls.schema, retentionStart(ls.ttlDays, s.cfg.Now())
	}
	s.mu.RUnlock()
	if ls == nil {
		return fmt.Errorf("duckdb store: write %s/%s: %w", project, logstore, store.ErrLogstoreNotFound)
	}
	req := &writeReq{done: make(chan error, 1)}
	var expired int
	req.parts, req.bytes, expired = buildRows(ls, sch, first, groups, received)
	if expired > 0 {
		// Already past the logstore's ttl: storing them would only create
		// a partition for the janitor to drop. Counted and logged, not silent.
		s.m.expiredDropped.Add(float64(expired))
		s.log.Warn("dropped logs older than the logstore's ttl", "project", project, "logstore", logstore, "count", expired)
	}
	if len(req.parts) == 0 {
		return nil
	}
	req.nrows = req.rows()

	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return errClosed
	}
	// One write larger than the whole budget is still accepted when
	// nothing else is queued, or it could never succeed.
	if q := s.queuedBytes.Add(req.bytes); q > s.cfg.QueueBytes && q != req.bytes {
		s.queuedBytes.Add(-req.bytes)
		s.closeMu.RUnlock()
		s.m.overloaded.Inc()
		return fmt.Errorf("duckdb store: ingest queue full (%d bytes not yet loaded): %w", q-req.bytes, store.ErrOverloaded)
	}
	rec := appendWALRecord(getRecordBuf(), ls.id, received.UnixNano(), groups)
	err := s.wal.append(rec, req)
	putRecordBuf(rec)
	s.closeMu.RUnlock()
	if err != nil {
		s.queuedBytes.Add(-req.bytes)
		return err
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The write may still become durable; the client retries (at-least-once).
		return fmt.Errorf("duckdb store: write %s/%s: %w", project, logstore, ctx.Err())
	}
}

var recordBufs sync.Pool

func getRecordBuf() []byte {
	if b, ok := recordBufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 64<<10)
}

func putRecordBuf(b []byte) {
	if cap(b) > 4<<20 {
		return
	}
	recordBufs.Put(&b)
}

// arena hands out byte slices carved from large chunks, so a Write's row
// strings cost a few allocations rather than several per row.
type arena struct {
	chunk     []byte
	chunkSize int // 0 = 256 KiB
}

func (a *arena) alloc(n int) []byte {
	if n > 64<<10 {
		return make([]byte, 0, n)
	}
	if cap(a.chunk)-len(a.chunk) < n {
		size := a.chunkSize
		if size == 0 {
			size = 256 << 10
		}
		a.chunk = make([]byte, 0, max(size, n))
	}
	b := a.chunk[len(a.chunk) : len(a.chunk) : len(a.chunk)+n]
	a.chunk = a.chunk[:len(a.chunk)+n]
	return b
}

func (a *arena) str(s string) string {
	if s == "" {
		return ""
	}
	b := append(a.alloc(len(s)), s...)
	return unsafe.String(&b[0], len(b))
}

// buildRows converts groups to appender rows, skipping (and counting) logs
// on days before first. Nothing in the result aliases groups.
func buildRows(ls *logstore, sch *schema, first int32, groups []protocol.LogGroup, received time.Time) (parts []part, total int64, expired int) {
	var (
		a    arena
		recv driver.Value = received.Unix()
	)
	// Size the arena's chunks to the write: a 4 KiB group should not
	// allocate (and clear) 256 KiB. Rows need about 2.5x the raw bytes
	// (contents blob, tokens, typed values).
	raw := 0
	for gi := range groups {
		for li := range groups[gi].Logs {
			for _, c := range groups[gi].Logs[li].Contents {
				raw += len(c.Key) + len(c.Value) + 4
			}
		}
	}
	a.chunkSize = min(max(raw*5/2, 4<<10), 256<<10)
	stride := nFixed + len(sch.fields)
	for gi := range groups {
		g := &groups[gi]
		var (
			topic  driver.Value = a.str(validUTF8(g.Topic))
			source driver.Value = a.str(validUTF8(g.Source))
			tags   driver.Value = encodeTags(g.LogTags)
			cur                 = -1
		)
		for li := range g.Logs {
			l := &g.Logs[li]
			day := dayOf(int64(l.Time))
			if day < first {
				expired++
				continue
			}
			if cur < 0 || parts[cur].day != day {
				cur = -1
				for i := range parts {
					if parts[i].day == day {
						cur = i
						break
					}
				}
				if cur < 0 {
					parts = append(parts, part{ls: ls, schema: sch, day: day, rows: make([]driver.Value, 0, stride*len(g.Logs))})
					cur = len(parts) - 1
				}
			}
			p := &parts[cur]
			base := len(p.rows)
			p.rows = append(p.rows, make([]driver.Value, stride)...)
			row := p.rows[base:]
			var ns int32
			if l.HasTimeNs {
				ns = int32(l.TimeNs)
			}
			row[0], row[1], row[2], row[3], row[4], row[5] = int64(l.Time), ns, topic, source, tags, recv

			blob := appendContents(a.alloc(contentsSize(l.Contents)), l.Contents)
			row[6] = blob
			total += int64(len(blob)) + 32
			row[7] = sch.lineText(&a, l.Contents)
			sch.fieldValues(&a, l.Contents, row[nFixed:])
		}
	}
	return parts, total, expired
}

// lineText builds the full-text column of a log.
func (s *schema) lineText(a *arena, contents []protocol.LogContent) string {
	if s.line == nil {
		return ""
	}
	n := 0
	for i := range contents {
		n += len(contents[i].Value) + 2
	}
	b := a.alloc(n + 8)
	for i := range contents {
		if s.include != nil || s.exclude != nil {
			if !s.inLine(contents[i].Key) {
				continue
			}
		}
		b = s.line.AppendValue(b, validUTF8(contents[i].Value))
	}
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// fieldValues fills the typed columns of a log (NULL when the key is
// missing or its value does not parse as the column's type).
func (s *schema) fieldValues(a *arena, contents []protocol.LogContent, dst []driver.Value) {
	if len(s.fields) == 0 {
		return
	}
	for i := range contents {
		fi, ok := s.byKey[contents[i].Key]
		if !ok {
			continue
		}
		v := contents[i].Value
		switch s.fields[fi].Type {
		case index.TypeLong:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				dst[fi] = n
			} else if f, err := strconv.ParseFloat(v, 64); err == nil {
				dst[fi] = int64(f)
			} else {
				dst[fi] = nil
			}
		case index.TypeDouble:
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				dst[fi] = f
			} else {
				dst[fi] = nil
			}
		default:
			dst[fi] = a.str(validUTF8(v))
		}
	}
}

// reshape rebuilds a part's typed columns for the logstore's current
// schema (the index changed between Write and commit).
func (p *part) reshape(cur *schema) {
	old := p.stride()
	n := len(p.rows) / old
	rows := make([]driver.Value, 0, n*(nFixed+len(cur.fields)))
	var a arena
	var contents []protocol.LogContent
	for i := range n {
		row := p.rows[i*old : (i+1)*old]
		rows = append(rows, row[:nFixed]...)
		rows = append(rows, make([]driver.Value, len(cur.fields))...)
		contents = contents[:0]
		_ = decodeContents(row[6].([]byte), func(k, v string) {
			contents = append(contents, protocol.LogContent{Key: k, Value: v})
		})
		cur.fieldValues(&a, contents, rows[len(rows)-len(cur.fields):])
	}
	p.rows, p.schema = rows, cur
}

// control runs fn on the writer goroutine, between commits.
func (s *Store) control(ctx context.Context, fn func(context.Context, *sql.Conn) error) error {
	job := ctlJob{fn: fn, done: make(chan error, 1)}
	select {
	case s.ctl <- job:
	case <-s.stop:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-job.done
}

// loadQueue holds fsynced writes waiting for the loader, in WAL order.
type loadQueue struct {
	mu       sync.Mutex
	reqs     []*writeReq
	rows     int
	oldest   time.Time // when the first queued write was acknowledged
	flush    bool      // a query wants everything loaded now
	lastEnd  int64     // WAL position after the last queued write
	loaded   int64     // WAL position loaded into DuckDB
	loadedCh chan struct{}
	kick     chan struct{}
}

// enqueue is the WAL's onSynced callback.
func (s *Store) enqueue(reqs []*writeReq) {
	q := &s.lq
	q.mu.Lock()
	if len(q.reqs) == 0 {
		q.oldest = time.Now()
	}
	for _, r := range reqs {
		q.rows += r.nrows
		for i := range r.parts {
			r.parts[i].ls.pending.Add(1)
		}
	}
	q.reqs = append(q.reqs, reqs...)
	q.lastEnd = reqs[len(reqs)-1].end
	big := q.rows >= s.cfg.LoadRows || s.queuedBytes.Load() >= s.cfg.QueueBytes/2
	q.mu.Unlock()
	if big {
		s.kickLoader()
	}
}

func (s *Store) kickLoader() {
	select {
	case s.lq.kick <- struct{}{}:
	default:
	}
}

// waitLoaded makes every acknowledged write of ls visible to queries:
// when some are still waiting for the loader, it asks for a load now and
// waits for it.
func (s *Store) waitLoaded(ctx context.Context, ls *logstore) error {
	if ls.pending.Load() == 0 {
		return nil
	}
	q := &s.lq
	q.mu.Lock()
	target := q.lastEnd
	for q.loaded < target {
		q.flush = true
		ch := q.loadedCh
		q.mu.Unlock()
		s.kickLoader()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stop:
			return errClosed
		}
		q.mu.Lock()
	}
	q.mu.Unlock()
	return nil
}

// writer is the single goroutine that changes the database: DDL jobs and
// loads of the queued writes.
func (s *Store) writer(c *sql.Conn) {
	defer s.wg.Done()
	defer c.Close()
	ctx := context.Background()
	tick := time.NewTicker(max(s.cfg.FlushInterval/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case job := <-s.ctl:
			job.done <- job.fn(ctx, c)
			continue
		case <-s.lq.kick:
		case <-tick.C:
		case <-s.stopLoader:
			// Close has stopped new writes and flushed the WAL.
			s.load(ctx, c, true)
			return
		}
		s.load(ctx, c, false)
	}
}

// load moves queued writes into DuckDB when enough rows are queued, the
// oldest waited FlushInterval, a query asked for it, or force.
func (s *Store) load(ctx context.Context, c *sql.Conn, force bool) {
	q := &s.lq
	for {
		q.mu.Lock()
		if len(q.reqs) == 0 || !(force || q.flush || q.rows >= s.cfg.LoadRows || time.Since(q.oldest) >= s.cfg.FlushInterval) {
			q.flush = false
			q.mu.Unlock()
			return
		}
		// Take up to MaxBatchRows (at least one write).
		n, rows := 0, 0
		for n < len(q.reqs) && (n == 0 || rows+q.reqs[n].nrows <= s.cfg.MaxBatchRows) {
			rows += q.reqs[n].nrows
			n++
		}
		reqs := slices.Clone(q.reqs[:n])
		q.reqs = slices.Delete(q.reqs, 0, n)
		q.rows -= rows
		q.oldest = time.Now()
		q.mu.Unlock()

		s.commit(ctx, c, reqs)
		end := reqs[len(reqs)-1].end
		for _, r := range reqs {
			s.queuedBytes.Add(-r.bytes)
			for i := range r.parts {
				r.parts[i].ls.pending.Add(-1)
			}
		}
		q.mu.Lock()
		q.loaded = end
		close(q.loadedCh)
		q.loadedCh = make(chan struct{})
		q.mu.Unlock()
		if err := s.wal.removeBelow(end); err != nil {
			s.log.Error("removing loaded WAL segments failed", "err", err)
		}
	}
}

// commit appends reqs in one transaction that also records the WAL
// position after the last of them. When it fails, each write is retried
// alone so one bad write does not fail its neighbours; a write that fails
// alone was already acknowledged, so it is counted and logged as lost.
func (s *Store) commit(ctx context.Context, c *sql.Conn, reqs []*writeReq) {
	live := reqs[:0:0]
	for _, r := range reqs {
		if err := s.checkLive(r); err != nil {
			s.m.loadFailed.Add(float64(r.nrows))
			s.log.Warn("dropping acknowledged logs of a logstore deleted before they were loaded", "err", err, "count", r.nrows)
			continue
		}
		live = append(live, r)
	}
	end := reqs[len(reqs)-1].end
	err := s.appendTx(ctx, c, live, end)
	if err == nil {
		return
	}
	if len(live) > 1 {
		for _, r := range live {
			s.commit(ctx, c, []*writeReq{r})
		}
		return
	}
	n := 0
	if len(live) == 1 {
		n = live[0].nrows
	}
	s.m.loadFailed.Add(float64(n))
	s.log.Error("loading acknowledged logs into DuckDB failed; they are lost", "err", err, "count", n)
	if _, err := c.ExecContext(ctx, "UPDATE sluice_wal SET pos = ?", end); err != nil {
		s.log.Error("recording the WAL position failed; the write will be loaded again after a restart", "err", err)
	}
}

type partKey struct {
	lsID int64
	day  int32
}

func (r *writeReq) rows() int {
	n := 0
	for i := range r.parts {
		n += len(r.parts[i].rows) / r.parts[i].stride()
	}
	return n
}

// checkLive fails writes to logstores dropped since they were accepted
// and reshapes rows whose schema is stale.
func (s *Store) checkLive(r *writeReq) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := range r.parts {
		p := &r.parts[i]
		if s.logstores[p.ls.key] != p.ls {
			return fmt.Errorf("duckdb store: write %s/%s: %w", p.ls.key.project, p.ls.key.logstore, store.ErrLogstoreNotFound)
		}
		if p.schema != p.ls.schema {
			p.reshape(p.ls.schema)
		}
	}
	return nil
}

func (s *Store) appendTx(ctx context.Context, c *sql.Conn, reqs []*writeReq, walEnd int64) error {
	byTable := map[partKey][]*part{}
	var order []partKey
	for _, r := range reqs {
		for i := range r.parts {
			p := &r.parts[i]
			k := partKey{p.ls.id, p.day}
			if _, ok := byTable[k]; !ok {
				order = append(order, k)
			}
			byTable[k] = append(byTable[k], p)
		}
	}
	var created []*part
	var nrows, nbytes int64
	err := c.Raw(func(dc any) error {
		conn := dc.(driver.Conn)
		tx, err := conn.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		rollback := func(err error) error {
			_ = tx.Rollback()
			return err
		}
		for _, k := range order {
			parts := byTable[k]
			p0 := parts[0]
			table := tableName(k.lsID, k.day)
			if !p0.ls.days[k.day] {
				if _, err := conn.(driver.ExecerContext).ExecContext(ctx, createTableSQL(table, p0.schema.fields), nil); err != nil {
					return rollback(fmt.Errorf("create partition %s: %w", table, err))
				}
				created = append(created, p0)
			}
			app, err := duck.NewAppenderFromConn(conn, "", table)
			if err != nil {
				return rollback(fmt.Errorf("appender %s: %w", table, err))
			}
			for _, p := range parts {
				st := p.stride()
				for i := 0; i < len(p.rows); i += st {
					if err := app.AppendRow(p.rows[i : i+st]...); err != nil {
						_ = app.Close()
						return rollback(fmt.Errorf("append to %s: %w", table, err))
					}
					nbytes += int64(len(p.rows[i+6].([]byte)))
				}
				nrows += int64(len(p.rows) / st)
			}
			if err := app.Close(); err != nil {
				return rollback(fmt.Errorf("flush appender %s: %w", table, err))
			}
		}
		if _, err := conn.(driver.ExecerContext).ExecContext(ctx, "UPDATE sluice_wal SET pos = "+strconv.FormatInt(walEnd, 10), nil); err != nil {
			return rollback(fmt.Errorf("record wal position: %w", err))
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(created) > 0 {
		s.mu.Lock()
		for _, p := range created {
			p.ls.days[p.day] = true
		}
		s.mu.Unlock()
	}
	s.m.commits.Inc()
	s.m.rowsWritten.Add(float64(nrows))
	s.m.bytesWritten.Add(float64(nbytes))
	return nil
}
