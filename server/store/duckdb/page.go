package duckdb

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicelog/sluice/server/store"
)

// Pages of logs in time order (GetLogs without SQL). The console asks for
// the newest 100 logs of a search, then more pages of 100 by offset; on a
// live server the range holds millions of rows in many segments. A page
// is found in two steps, so that only the rows shown are ever decoded:
//
//  1. Keys. Sources (segments, and day tables of earlier versions) are
//     visited in time order — newest maximum time first for newest-first
//     pages — in batches; each batch is one DuckDB query that reads only
//     the time columns and the columns the search filters on, and returns
//     its best keys (time, ns, file, row number). DuckDB skips row groups
//     by their time statistics and, with its Top-N dynamic filter, those
//     that cannot beat the keys found so far. Once the keys found are
//     certain — the offset+line-th is newer than anything a source not yet
//     read can hold — no further source is opened.
//  2. Rows. The page's keys are fetched by file row number (and their time
//     range, which prunes row groups): 100 rows decoded, not the row
//     groups around them.
//
// The keys of a search are kept for a short while (pageCache), so the next
// page does step 2 only; sources that appeared since (new loads) are read
// and merged in first, and a source that went away (compaction,
// retention) makes the keys be found again. Order is (time, ns, source,
// row number), so equal times page deterministically.

// pageKeys is how many keys step 1 keeps at least: the console's ten pages
// of 100 come from one search.
const pageKeys = 1000

// maxPageKeys bounds the keys step 1 sorts and keeps (about 32 bytes
// each); deeper pages are found by counting and OFFSET (deepPage).
const maxPageKeys = 20_000

// source is one file or table holding a view's rows.
type source struct {
	id         int64    // segment id; -1-day for a day table
	seg        *segment // nil for a day table
	day        int32
	minT, maxT int64
	rows       int64
}

// rowKey orders and locates one row: src is a source id, rn its row in
// the source (file_row_number, or rowid in a day table).
type rowKey struct {
	t   int64
	ns  int32
	src int64
	rn  int64
}

// before reports whether a comes before b in a page (newest first when
// reverse).
func (a rowKey) before(b rowKey, reverse bool) bool {
	c := cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.ns, b.ns), cmp.Compare(a.src, b.src), cmp.Compare(a.rn, b.rn))
	if reverse {
		return c > 0
	}
	return c < 0
}

// sources returns the view's sources, in the order a page visits them.
func (v *view) sources(reverse bool) []source {
	var out []source
	for _, d := range v.days {
		if v.ls.days[d] {
			out = append(out, source{id: -1 - int64(d), day: d, minT: int64(d) * 86400, maxT: int64(d)*86400 + 86399, rows: 1 << 40})
		}
		for _, sg := range v.segs[d] {
			out = append(out, source{id: sg.id, seg: sg, day: d, minT: sg.minTime, maxT: sg.maxTime, rows: sg.rows})
		}
	}
	slices.SortFunc(out, func(a, b source) int {
		if reverse {
			return cmp.Or(cmp.Compare(b.maxT, a.maxT), cmp.Compare(b.id, a.id))
		}
		return cmp.Or(cmp.Compare(a.minT, b.minT), cmp.Compare(a.id, b.id))
	})
	return out
}

// beats reports whether key a is certain against source s: no row of s
// can come before it.
func (a rowKey) beats(s source, reverse bool) bool {
	if reverse {
		return a.t > s.maxT
	}
	return a.t < s.minT
}

// pageState is what step 1 knows of one search: the best keys over the
// sources read (at most limit of them; exact over those sources), and
// which sources those are.
type pageState struct {
	keys  []rowKey
	read  map[int64]bool
	limit int
}

// certain returns how many leading keys no unread source can precede.
func (st *pageState) certain(srcs []source, reverse bool) int {
	for _, s := range srcs {
		if st.read[s.id] {
			continue
		}
		// srcs are in visiting order: the first unread one bounds the rest.
		n, _ := slices.BinarySearchFunc(st.keys, s, func(k rowKey, s source) int {
			if k.beats(s, reverse) {
				return -1
			}
			return 1
		})
		return n
	}
	return len(st.keys)
}

// merge adds keys read from more sources, keeping the best limit.
func (st *pageState) merge(more []rowKey, reverse bool) {
	st.keys = append(st.keys, more...)
	slices.SortFunc(st.keys, func(a, b rowKey) int {
		if a.before(b, reverse) {
			return -1
		}
		if b.before(a, reverse) {
			return 1
		}
		return 0
	})
	st.keys = slices.Compact(st.keys)
	if len(st.keys) > st.limit {
		st.keys = st.keys[:st.limit]
	}
}

// pageCacheKey identifies a search whose keys can be reused: the same
// logstore state (schema) and request.
type pageCacheKey struct {
	ls       *logstore
	schema   *schema
	query    string
	topic    string
	from, to int64
	reverse  bool
}

type pageCacheEntry struct {
	st   *pageState
	used time.Time
}

// pageCache keeps the keys of recent searches: a page of a search asked
// again within pageCacheTTL starts from them.
type pageCache struct {
	mu      sync.Mutex
	entries map[pageCacheKey]*pageCacheEntry
}

const (
	pageCacheTTL = time.Minute
	pageCacheMax = 64
)

func (c *pageCache) get(k pageCacheKey) *pageState {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[k]
	if e == nil || time.Since(e.used) > pageCacheTTL {
		return nil
	}
	// Handed out as a copy: the caller extends it.
	return &pageState{keys: slices.Clone(e.st.keys), read: mapsClone(e.st.read), limit: e.st.limit}
}

func (c *pageCache) put(k pageCacheKey, st *pageState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[pageCacheKey]*pageCacheEntry{}
	}
	now := time.Now()
	for key, e := range c.entries {
		if now.Sub(e.used) > pageCacheTTL {
			delete(c.entries, key)
		}
	}
	for len(c.entries) >= pageCacheMax {
		var oldest pageCacheKey
		var at time.Time
		for key, e := range c.entries {
			if at.IsZero() || e.used.Before(at) {
				oldest, at = key, e.used
			}
		}
		delete(c.entries, oldest)
	}
	c.entries[k] = &pageCacheEntry{st: st, used: now}
}

func mapsClone(m map[int64]bool) map[int64]bool {
	out := make(map[int64]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// runSearch returns one page (req.Offset, req.Line) of the logs matching
// c, in time order.
func (s *Store) runSearch(ctx context.Context, v *view, req store.SearchRequest, c *compiled) (*store.SearchResult, error) {
	line := req.Line
	if line <= 0 {
		line = 100
	}
	need := req.Offset + line
	if need > maxPageKeys {
		return s.deepPage(ctx, v, req, c)
	}
	limit := max(pageKeys, (need+pageKeys-1)/pageKeys*pageKeys)
	srcs := v.sources(req.Reverse)
	ck := pageCacheKey{ls: v.ls, schema: v.schema, query: req.Query, topic: req.Topic, from: v.from, to: v.to, reverse: req.Reverse}
	st := s.pages.get(ck)
	if st != nil {
		ids := make(map[int64]bool, len(srcs))
		for _, sr := range srcs {
			ids[sr.id] = true
		}
		for id := range st.read {
			if !ids[id] {
				st = nil // a source read went away (compaction, retention)
				break
			}
		}
	}
	if st == nil || st.limit < limit {
		st = &pageState{read: map[int64]bool{}, limit: limit}
	}
	where, args := v.filter(req.Topic, c.where)
	rowTarget := int64(4 * segmentRowGroup)
	for {
		// Sources not read yet, in visiting order.
		var todo []source
		for _, sr := range srcs {
			if !st.read[sr.id] {
				todo = append(todo, sr)
			}
		}
		if len(todo) == 0 || st.certain(srcs, req.Reverse) >= need {
			break
		}
		// A batch: sources up to about rowTarget rows (at least one),
		// doubling each round so sparse matches need few queries.
		var batch []source
		var rows int64
		for _, sr := range todo {
			if len(batch) > 0 && (rows >= rowTarget || len(batch) >= 256) {
				break
			}
			batch = append(batch, sr)
			rows += sr.rows
		}
		rowTarget *= 2
		if err := v.fetchSources(ctx, batch); err != nil {
			return nil, err
		}
		keys, err := s.pageKeys(ctx, v, batch, where, args, st.limit, req.Reverse)
		if err != nil {
			return nil, err
		}
		for _, sr := range batch {
			st.read[sr.id] = true
		}
		st.merge(keys, req.Reverse)
	}
	s.pages.put(ck, st)
	res := &store.SearchResult{}
	if req.Offset >= len(st.keys) {
		return res, nil
	}
	page := st.keys[req.Offset:min(need, len(st.keys))]
	rows, keys, err := s.pageRows(ctx, v, srcs, page)
	if err != nil {
		return nil, err
	}
	res.Rows, res.Keys = rows, keys
	res.ProcessedRows = int64(len(res.Rows))
	return res, nil
}

// deepPage finds a page deeper than maxPageKeys by OFFSET: day by day in
// page order, counting the matches of days wholly skipped, then the
// page's keys with LIMIT and OFFSET, in the same order as runSearch.
func (s *Store) deepPage(ctx context.Context, v *view, req store.SearchRequest, c *compiled) (*store.SearchResult, error) {
	srcs := v.sources(req.Reverse)
	days := slices.Clone(v.days)
	order := " ORDER BY " + ColTime + ", " + ColTimeNs + ", __src, __rn"
	if req.Reverse {
		order = " ORDER BY " + ColTime + " DESC, " + ColTimeNs + " DESC, __src DESC, __rn DESC"
		slices.Reverse(days)
	}
	where, args := v.filter(req.Topic, c.where)
	skip, want := req.Offset, max(req.Line, 1)
	var page []rowKey
	for _, d := range days {
		if want == 0 {
			break
		}
		var daySrcs []source
		for _, sr := range srcs {
			if sr.day == d {
				daySrcs = append(daySrcs, sr)
			}
		}
		if err := v.fetchSources(ctx, daySrcs); err != nil {
			return nil, err
		}
		from := "(" + v.sourceSelect(daySrcs) + ")"
		if skip > 0 {
			var n int
			if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+from+" WHERE "+where, args...).Scan(&n); err != nil {
				return nil, s.queryErr(err)
			}
			if n <= skip {
				skip -= n
				continue
			}
		}
		keys, err := s.keyQuery(ctx, "SELECT "+refColumns+" FROM "+from+" WHERE "+where+order+" LIMIT ? OFFSET ?", append(args, want, skip), want)
		if err != nil {
			return nil, err
		}
		page = append(page, keys...)
		want -= len(keys)
		skip = 0
	}
	res := &store.SearchResult{}
	rows, keys, err := s.pageRows(ctx, v, srcs, page)
	if err != nil {
		return nil, err
	}
	res.Rows, res.Keys = rows, keys
	res.ProcessedRows = int64(len(res.Rows))
	return res, nil
}

// refColumns are the columns a key query returns.
const refColumns = ColTime + ", " + ColTimeNs + ", __src, __rn"

// sourceSelect returns a SELECT over the sources with the view's columns
// plus __src (the source id) and __rn (the row's number in it).
func (v *view) sourceSelect(srcs []source) string {
	var parts []string
	var segs []*segment
	for _, sr := range srcs {
		if sr.seg != nil {
			segs = append(segs, sr.seg)
			continue
		}
		parts = append(parts, "SELECT *, "+strconv.FormatInt(sr.id, 10)+"::BIGINT AS __src, rowid AS __rn FROM "+quoteIdent(tableName(v.ls.id, sr.day)))
	}
	if len(segs) > 0 {
		parts = append(parts, v.segmentSelect(segs, true))
	}
	return strings.Join(parts, " UNION ALL BY NAME ")
}

// pageKeys returns the best limit keys of the batch's matching rows.
func (s *Store) pageKeys(ctx context.Context, v *view, batch []source, where string, args []any, limit int, reverse bool) ([]rowKey, error) {
	order := " ORDER BY " + ColTime + ", " + ColTimeNs + ", __src, __rn"
	if reverse {
		order = " ORDER BY " + ColTime + " DESC, " + ColTimeNs + " DESC, __src DESC, __rn DESC"
	}
	q := "SELECT " + refColumns + " FROM (" + v.sourceSelect(batch) + ") WHERE " + where + order + " LIMIT " + strconv.Itoa(limit)
	return s.keyQuery(ctx, q, args, limit)
}

// keyQuery runs a query returning refColumns.
func (s *Store) keyQuery(ctx context.Context, q string, args []any, limit int) ([]rowKey, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.queryErr(err)
	}
	defer rows.Close()
	keys := make([]rowKey, 0, min(limit, 1024))
	for rows.Next() {
		var k rowKey
		if err := rows.Scan(&k.t, &k.ns, &k.src, &k.rn); err != nil {
			return nil, fmt.Errorf("duckdb store: read row key: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.queryErr(err)
	}
	return keys, nil
}

// pageRows fetches the rows of the keys, in their order, and the content
// keys they hold.
func (s *Store) pageRows(ctx context.Context, v *view, srcs []source, page []rowKey) ([][]store.Field, []string, error) {
	bySrc := map[int64][]rowKey{}
	for _, k := range page {
		bySrc[k.src] = append(bySrc[k.src], k)
	}
	// Shared storage: the page's keys may come from an earlier search
	// (pageCache), whose segments this view has not fetched.
	var need []source
	for _, sr := range srcs {
		if len(bySrc[sr.id]) > 0 {
			need = append(need, sr)
		}
	}
	if err := v.fetchSources(ctx, need); err != nil {
		return nil, nil, err
	}
	var parts []string
	var args []any
	for _, sr := range need {
		ks := bySrc[sr.id]
		lo, hi := ks[0].t, ks[0].t
		var in strings.Builder
		for i, k := range ks {
			lo, hi = min(lo, k.t), max(hi, k.t)
			if i > 0 {
				in.WriteString(", ")
			}
			in.WriteString(strconv.FormatInt(k.rn, 10))
		}
		// The time range prunes row groups by their statistics; the row
		// numbers pick the rows.
		var from, num string
		if sr.seg != nil {
			from = "read_parquet(" + quoteString(segmentPath(v.dir, v.ls.id, sr.id)) + ", file_row_number = true)"
			num = "file_row_number"
		} else {
			from, num = quoteIdent(tableName(v.ls.id, sr.day)), "rowid"
		}
		parts = append(parts, "SELECT "+strconv.FormatInt(sr.id, 10)+"::BIGINT AS __src, "+num+" AS __rn, "+resultCols+
			" FROM "+from+" WHERE "+ColTime+" BETWEEN ? AND ? AND "+num+" IN ("+in.String()+")")
		args = append(args, lo, hi)
	}
	if len(parts) == 0 {
		return nil, nil, nil
	}
	rows, err := s.db.QueryContext(ctx, strings.Join(parts, " UNION ALL "), args...)
	if err != nil {
		return nil, nil, s.queryErr(err)
	}
	defer rows.Close()
	type ref struct{ src, rn int64 }
	got := make(map[ref][]store.Field, len(page))
	keys := map[string]bool{}
	tagCache := map[string][]store.Field{}
	for rows.Next() {
		var (
			r              ref
			t, recv        int64
			ns             int32
			topic, src, tg string
			contents       []byte
		)
		if err := rows.Scan(&r.src, &r.rn, &t, &ns, &topic, &src, &tg, &recv, &contents); err != nil {
			return nil, nil, fmt.Errorf("duckdb store: read row: %w", err)
		}
		row := []store.Field{
			{Key: "__time__", Value: strconv.FormatInt(t, 10)},
			{Key: "__time_ns_part__", Value: strconv.FormatInt(int64(ns), 10)},
			{Key: "__source__", Value: src},
			{Key: "__topic__", Value: topic},
		}
		tags, ok := tagCache[tg]
		if !ok {
			lt, err := decodeTags(tg)
			if err != nil {
				return nil, nil, fmt.Errorf("duckdb store: decode tags: %w", err)
			}
			for _, t := range lt {
				tags = append(tags, store.Field{Key: "__tag__:" + t.Key, Value: t.Value})
			}
			tagCache[tg] = tags
		}
		row = append(row, tags...)
		row = append(row, store.Field{Key: "__tag__:__receive_time__", Value: strconv.FormatInt(recv, 10)})
		if err := decodeContents(contents, func(k, val string) {
			row = append(row, store.Field{Key: k, Value: val})
			keys[k] = true
		}); err != nil {
			return nil, nil, fmt.Errorf("duckdb store: row at %d: %w", t, err)
		}
		got[r] = row
	}
	if err := rows.Err(); err != nil {
		return nil, nil, s.queryErr(err)
	}
	out := make([][]store.Field, 0, len(page))
	for _, k := range page {
		row, ok := got[ref{k.src, k.rn}]
		if !ok {
			return nil, nil, fmt.Errorf("duckdb store: row %d of source %d (%s) is gone", k.rn, k.src, filepath.Base(segmentPath(v.dir, v.ls.id, k.src)))
		}
		out = append(out, row)
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	return out, names, nil
}
