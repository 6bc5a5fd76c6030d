package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/shardlog"
	"github.com/sluicelog/sluice/server/store/wal"
)

// writeReq is one accepted Write: its rows wait in memory for the
// loader, its record is in the WAL up to end.
type writeReq struct {
	parts []part
	bytes int64
	nrows int
	end   int64 // WAL position after its record
	done  chan error

	lsID    int64
	shard   int
	ngroups int
	// first is the shard cursor of the first group, set when the WAL
	// hands the durable record to synced.
	first int64

	// Shared storage only: the groups as LogGroupList entries (the
	// shard chunk the group commit writes), and the logstore and receive
	// time, which a write whose every log expired has no part to carry.
	entries  []byte
	ls       *logstore
	received int64
	packs    []PackKey // of its groups that carry a __pack_id__
}

// part is the rows of one Write for one day partition, column by
// column: the fixed columns, then one per field of schema.
type part struct {
	ls     *logstore
	schema *schema
	day    int32
	n      int
	cols   []column

	gi   int     // the group whose per-group values were added last
	gval [3]span // its topic, source and tags in cols 2-4
}

// newPart returns an empty part with room for hint rows and the given
// contents and token text bytes.
// Columns come from pools (nil: allocated).
func newPart(pools *colPools, ls *logstore, sch *schema, day int32, hint, contentBytes, lineBytes int) part {
	p := part{ls: ls, schema: sch, day: day, gi: -1, cols: pools.get(nFixed + len(sch.fields))}
	c := p.cols
	for _, i := range [...]int{colTime, colTimeNs, colReceiveTime} {
		c[i].ints = room(c[i].ints, hint)
	}
	for _, i := range [...]int{colTopic, colSource, colTags, colContents, colLine} {
		c[i].spans = room(c[i].spans, hint)
	}
	c[colContents].data = room(c[colContents].data, contentBytes)
	c[colLine].data = room(c[colLine].data, lineBytes)
	for i, f := range sch.fields {
		fc := &c[nFixed+i]
		fc.null = room(fc.null, hint)
		switch f.Type {
		case index.TypeLong:
			fc.ints = room(fc.ints, hint)
		case index.TypeDouble:
			fc.floats = room(fc.floats, hint)
		default:
			fc.spans = room(fc.spans, hint)
		}
	}
	return p
}

type ctlJob struct {
	fn   func(context.Context, *sql.Conn) error
	done chan error
}

// Write implements store.Store: WriteShard to shard 0.
func (s *Store) Write(ctx context.Context, project, logstore string, groups []protocol.LogGroup, received time.Time) error {
	return s.WriteShard(ctx, project, logstore, 0, groups, received)
}

// WriteShard implements store.Store. The groups are converted to rows on
// the caller's goroutine (so conversion scales with concurrent requests)
// and encoded as one WAL record; WriteShard returns once the WAL flusher
// has fsynced that record (group commit with the other writes appended
// meanwhile) and appended it to the shard's log. The loader moves the
// rows into segments later, in large batches (see the package
// documentation).
func (s *Store) WriteShard(ctx context.Context, project, logstore string, shard int, groups []protocol.LogGroup, received time.Time) error {
	if shard < 0 || shard >= store.MaxShards {
		return fmt.Errorf("duckdb store: write %s/%s: shard %d is not in [0, %d)", project, logstore, shard, store.MaxShards)
	}
	if len(groups) == 0 {
		return nil
	}
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
	if ls == nil && s.sh != nil {
		// Created on another node since the last refresh?
		if ls = s.lookupShared(ctx, lsKey{project, logstore}); ls != nil {
			s.mu.RLock()
			sch, first = ls.schema, retentionStart(ls.ttlDays, s.cfg.Now())
			s.mu.RUnlock()
		}
	}
	if ls == nil {
		return fmt.Errorf("duckdb store: write %s/%s: %w", project, logstore, store.ErrLogstoreNotFound)
	}
	// Refused before converting when the queue is already full: under
	// overload, conversion thrown away was taking the CPU the loader needs
	// to catch up (async durability, 1 MiB groups: 2.9-3.2 µs/line with
	// ~850 refusals per run before this check).
	if q := s.queuedBytes.Load(); q >= s.cfg.QueueBytes {
		return s.overloaded(q)
	}
	// Converting is CPU work: at most GOMAXPROCS writes do it at once, so
	// the loader and the WAL flusher are not starved by many concurrent
	// requests (the loader is one goroutine among them; starved, it fell
	// behind until the queue was full and writes were refused).
	select {
	case s.cpu <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("duckdb store: write %s/%s: %w", project, logstore, ctx.Err())
	}
	req, err := s.accept(ls, sch, first, project, logstore, shard, groups, received)
	<-s.cpu
	if err != nil || req == nil {
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

// accept converts groups and appends their WAL record.
func (s *Store) accept(ls *logstore, sch *schema, first int32, project, logstore string, shard int, groups []protocol.LogGroup, received time.Time) (*writeReq, error) {
	req := &writeReq{done: make(chan error, 1), lsID: ls.id, shard: shard, ngroups: len(groups)}
	var expired int
	req.parts, req.bytes, expired = buildRows(&s.pools, ls, sch, first, groups, received)
	if expired > 0 {
		// Already past the logstore's ttl: storing them would only create
		// a partition for the janitor to drop. Counted and logged, not silent.
		s.m.expiredDropped.Add(float64(expired))
		s.log.Warn("dropped logs older than the logstore's ttl", "project", project, "logstore", logstore, "count", expired)
	}
	// Even with every log expired the groups go to the shard log: it
	// keeps what was received, by receive time, as the Log Service does.
	req.nrows = req.rows()

	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, errClosed
	}
	// One write larger than the whole budget is still accepted when
	// nothing else is queued, or it could never succeed.
	if q := s.queuedBytes.Add(req.bytes); q > s.cfg.QueueBytes && q != req.bytes {
		s.queuedBytes.Add(-req.bytes)
		s.closeMu.RUnlock()
		return nil, s.overloaded(q - req.bytes)
	}
	if s.sh != nil {
		// No local WAL: the group commit acknowledges the write, and
		// records its groups in the shard log (sharedshards.go).
		req.ls, req.received = ls, received.UnixNano()
		for i := range groups {
			start := len(req.entries)
			req.entries = protocol.AppendLogGroupListEntry(req.entries, &groups[i])
			if id := packID(&groups[i]); id != "" {
				req.packs = append(req.packs, PackKey{Logstore: ls.id, ID: id, Digest: int64(xxhash.Sum64(req.entries[start:]))})
			}
		}
		s.queuedBytes.Add(int64(len(req.entries)))
		req.bytes += int64(len(req.entries))
		s.closeMu.RUnlock()
		s.enqueue([]*writeReq{req})
		return req, nil
	}
	rec := wal.AppendRecord(getRecordBuf(), ls.id, shard, received.UnixNano(), groups)
	err := s.wal.Append(rec, req)
	putRecordBuf(rec)
	s.closeMu.RUnlock()
	if err != nil {
		s.queuedBytes.Add(-req.bytes)
		return nil, err
	}
	return req, nil
}

// maxPackID bounds the __pack_id__ values recorded for re-sends (the
// agent's and the SDK producer's are under 40 bytes); a group with a
// longer one is stored every time it is sent.
const maxPackID = 128

// packID returns a copy of the group's __pack_id__ tag, or "".
func packID(g *protocol.LogGroup) string {
	for _, t := range g.LogTags {
		if t.Key == "__pack_id__" && t.Value != "" && len(t.Value) <= maxPackID {
			return strings.Clone(t.Value) // the group aliases the request's buffer
		}
	}
	return ""
}

// overloaded counts a write refused because queued bytes are not yet
// loaded, and returns its retryable error.
func (s *Store) overloaded(queued int64) error {
	s.m.overloaded.Inc()
	return fmt.Errorf("duckdb store: ingest queue full (%d bytes not yet loaded): %w", queued, store.ErrOverloaded)
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

// buildRows converts groups to columnar parts, one per day, skipping (and
// counting) logs on days before first. Nothing in the result aliases
// groups. total is the memory the parts hold, roughly.
func buildRows(pools *colPools, ls *logstore, sch *schema, first int32, groups []protocol.LogGroup, received time.Time) (parts []part, total int64, expired int) {
	recv := received.Unix()
	// Size the first part for everything: a write is nearly always of
	// one day, and growing the columns row by row costs more than
	// building them.
	var nlogs, kv, vals int
	for gi := range groups {
		for li := range groups[gi].Logs {
			nlogs++
			for _, c := range groups[gi].Logs[li].Contents {
				kv += len(c.Key) + len(c.Value) + 4
				vals += len(c.Value) + 2
			}
		}
	}
	for gi := range groups {
		g := &groups[gi]
		cur := -1
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
					if len(parts) == 0 {
						parts = append(parts, newPart(pools, ls, sch, day, nlogs, kv+8*nlogs, vals+8*nlogs))
					} else {
						parts = append(parts, newPart(pools, ls, sch, day, len(g.Logs), 0, 0))
					}
					cur = len(parts) - 1
				}
			}
			p := &parts[cur]
			if p.gi != gi {
				// Per-group values are stored once per part and shared by
				// its rows.
				p.gi = gi
				p.gval[0] = p.cols[colTopic].appendData(validUTF8(g.Topic))
				p.gval[1] = p.cols[colSource].appendData(validUTF8(g.Source))
				p.gval[2] = p.cols[colTags].appendData(encodeTags(g.LogTags))
			}
			var ns int64
			if l.HasTimeNs {
				ns = int64(int32(l.TimeNs))
			}
			cols := p.cols
			cols[colTime].ints = append(cols[colTime].ints, int64(l.Time))
			cols[colTimeNs].ints = append(cols[colTimeNs].ints, ns)
			cols[colTopic].spans = append(cols[colTopic].spans, p.gval[0])
			cols[colSource].spans = append(cols[colSource].spans, p.gval[1])
			cols[colTags].spans = append(cols[colTags].spans, p.gval[2])
			cols[colReceiveTime].ints = append(cols[colReceiveTime].ints, recv)
			c := &cols[colContents]
			off := len(c.data)
			c.data = appendContents(c.data, l.Contents)
			c.spans = append(c.spans, span{uint32(off), uint32(len(c.data) - off)})
			total += int64(len(c.data)-off) + 64
			sch.appendLine(&cols[colLine], l.Contents)
			sch.appendFields(p.cols[nFixed:], l.Contents)
			p.n++
		}
	}
	for i := range parts {
		parts[i].gi = -1
		for j := range parts[i].cols {
			total += int64(len(parts[i].cols[j].data))
		}
	}
	return parts, total, expired
}

// appendData adds s to the column's data (not as a row) and returns its span.
func (c *column) appendData(s string) span {
	sp := span{uint32(len(c.data)), uint32(len(s))}
	c.data = append(c.data, s...)
	return sp
}

// appendLine adds a log's full-text tokens to the column.
func (s *schema) appendLine(c *column, contents []protocol.LogContent) {
	off := len(c.data)
	if s.line != nil {
		for i := range contents {
			if s.include != nil || s.exclude != nil {
				if !s.inLine(contents[i].Key) {
					continue
				}
			}
			c.data = s.line.AppendValue(c.data, contents[i].Value) // always valid UTF-8
		}
	}
	c.spans = append(c.spans, span{uint32(off), uint32(len(c.data) - off)})
}

// appendFields adds a log's typed column values (NULL when the key is
// missing or its value does not parse as the column's type).
func (s *schema) appendFields(cols []column, contents []protocol.LogContent) {
	if len(s.fields) == 0 {
		return
	}
	for i := range cols {
		c := &cols[i]
		c.null = append(c.null, true)
		switch s.fields[i].Type {
		case index.TypeLong:
			c.ints = append(c.ints, 0)
		case index.TypeDouble:
			c.floats = append(c.floats, 0)
		default:
			c.spans = append(c.spans, span{})
		}
	}
	for i := range contents {
		fi, ok := s.fieldIndex(contents[i].Key)
		if !ok {
			continue
		}
		c := &cols[fi]
		r := len(c.null) - 1
		v := contents[i].Value
		switch s.fields[fi].Type {
		case index.TypeLong:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				c.ints[r], c.null[r] = n, false
			} else if f, err := strconv.ParseFloat(v, 64); err == nil {
				c.ints[r], c.null[r] = int64(f), false
			} else {
				c.null[r] = true // the last value of a repeated key counts
			}
		case index.TypeDouble:
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				c.floats[r], c.null[r] = f, false
			} else {
				c.null[r] = true
			}
		default:
			c.spans[r], c.null[r] = c.appendData(validUTF8(v)), false
		}
	}
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

// synced is the WAL's onSynced callback: it appends the batch's records
// to the shard logs (one write per shard; readable by PullLogs once the
// writes are acknowledged) and queues the rows for the loader.
func (s *Store) synced(batch []wal.Synced[*writeReq]) error {
	entries := s.shardEntries[:0]
	reqs := s.syncedReqs[:0]
	for _, b := range batch {
		r := b.Waiter
		r.end = b.End
		entries = append(entries, shardlog.Entry{Key: shardlog.Key{Logstore: r.lsID, Shard: r.shard}, Record: b.Record, Groups: r.ngroups, WALEnd: r.end})
		reqs = append(reqs, r)
	}
	if err := s.shards.Append(entries); err != nil {
		return err
	}
	for i, r := range reqs {
		r.first = entries[i].First
	}
	clear(entries)
	s.shardEntries = entries[:0]
	s.enqueue(reqs)
	clear(reqs)
	s.syncedReqs = reqs[:0]
	return nil
}

// enqueue queues written requests for the loader.
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
	if s.sh != nil || ls.pending.Load() == 0 {
		// Shared storage: pending writes are not acknowledged yet.
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
			s.load(ctx, c, false)
			s.compact(ctx, c)
			s.sweep(false)
			continue
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

		var err error
		if s.sh != nil {
			s.loadShared(ctx, reqs)
		} else {
			err = s.commit(ctx, c, reqs)
		}
		end := reqs[len(reqs)-1].end
		for _, r := range reqs {
			s.queuedBytes.Add(-r.bytes)
			for i := range r.parts {
				r.parts[i].ls.pending.Add(-1)
				s.pools.release(&r.parts[i])
			}
		}
		q.mu.Lock()
		q.loaded = end
		close(q.loadedCh)
		q.loadedCh = make(chan struct{})
		q.mu.Unlock()
		if err != nil {
			// Not loaded and the position not recorded (no longer waited
			// for either): the WAL keeps them for the restart's recovery.
			return
		}
		if s.wal == nil {
			continue
		}
		if err := s.wal.RemoveBelow(end); err != nil {
			s.log.Error("removing loaded WAL segments failed", "err", err)
		}
	}
}

// commit appends reqs in one transaction that also records the WAL
// position after the last of them. When it fails, each write is retried
// alone so one bad write does not fail its neighbours; a write that fails
// alone was already acknowledged, so it is counted and logged as lost.
func (s *Store) commit(ctx context.Context, c *sql.Conn, reqs []*writeReq) error {
	// The position recorded below is where recovery starts: the shard
	// logs must hold everything before it durably (shardlog.Recover).
	if err := s.shards.Sync(); err != nil {
		err = s.wal.Fail(err)
		s.log.Error("fsync of the shard logs failed: writes are refused until a restart, which recovers them from the WAL", "err", err)
		return err
	}
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
		return nil
	}
	if len(live) > 1 {
		for _, r := range live {
			if err := s.commit(ctx, c, []*writeReq{r}); err != nil {
				return err
			}
		}
		return nil
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
	return nil
}

func (r *writeReq) rows() int {
	n := 0
	for i := range r.parts {
		n += r.parts[i].n
	}
	return n
}

// checkLive fails writes to logstores dropped since they were accepted
// and reshapes parts whose schema is stale.
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

// reshape rebuilds a part's typed columns for the logstore's current
// schema (the index changed between Write and load) from the contents.
func (p *part) reshape(cur *schema) {
	fresh := newPart(nil, p.ls, cur, p.day, p.n, 0, 0)
	cols := append(p.cols[:nFixed:nFixed], fresh.cols[nFixed:]...)
	var contents []protocol.LogContent
	c := &p.cols[colContents]
	for r := range p.n {
		sp := c.spans[r]
		contents = contents[:0]
		_ = decodeContents(c.data[sp.off:sp.off+sp.n], func(k, v string) {
			contents = append(contents, protocol.LogContent{Key: k, Value: v})
		})
		cur.appendFields(cols[nFixed:], contents)
	}
	p.cols, p.schema = cols, cur
}

// appendTx writes the parts of reqs as one segment per logstore, day and
// schema, then records the segments and the WAL position walEnd in one
// DuckDB transaction. Segment files of a failed load are removed.
func (s *Store) appendTx(ctx context.Context, c *sql.Conn, reqs []*writeReq, walEnd int64) (err error) {
	type fileKey struct {
		ls  *logstore
		day int32
		sch *schema
	}
	byFile := map[fileKey][]*part{}
	var order []fileKey
	for _, r := range reqs {
		for i := range r.parts {
			p := &r.parts[i]
			k := fileKey{p.ls, p.day, p.schema}
			if _, ok := byFile[k]; !ok {
				order = append(order, k)
			}
			byFile[k] = append(byFile[k], p)
		}
	}
	type written struct {
		ls   *logstore
		seg  *segment
		path string
	}
	var out []written
	defer func() {
		if err != nil {
			for _, w := range out {
				_ = os.Remove(w.path)
			}
		}
	}()
	var nrows, nbytes int64
	for _, k := range order {
		s.nextSeg++
		path := segmentPath(s.cfg.DataDir, k.ls.id, s.nextSeg)
		sg, err := writeSegment(path, k.sch, byFile[k])
		if err != nil {
			return fmt.Errorf("write segment %s: %w", path, err)
		}
		sg.id, sg.day, sg.fields, sg.fkey = s.nextSeg, k.day, k.sch.fields, fieldsKey(k.sch.fields)
		out = append(out, written{k.ls, &sg, path})
		nrows += sg.rows
		for _, p := range byFile[k] {
			nbytes += int64(len(p.cols[colContents].data))
		}
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for _, w := range out {
		if err := insertSegment(ctx, tx, w.ls.id, w.seg); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE sluice_wal SET pos = ?", walEnd); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("record wal position: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.mu.Lock()
	for _, w := range out {
		w.ls.addSegment(w.seg)
	}
	s.mu.Unlock()
	s.m.commits.Inc()
	s.m.segmentsWritten.Add(float64(len(out)))
	s.m.rowsWritten.Add(float64(nrows))
	s.m.bytesWritten.Add(float64(nbytes))
	return nil
}
