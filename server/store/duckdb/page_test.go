package duckdb

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
)

// pageLog is what a paging test knows of one written log.
type pageLog struct {
	t   int64
	ns  uint32
	seq int
	hit bool // matches the test's search
}

// writePageLogs writes logs in the given number of loads (each a segment
// or more), in a shuffled order so segments' time ranges overlap. Every
// log has a unique seq; many share a second and a nanosecond.
func writePageLogs(t *testing.T, s *Store, logs []pageLog, loads int, r *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	order := r.Perm(len(logs))
	per := (len(logs) + loads - 1) / loads
	s.mu.RLock()
	ls := s.logstores[lsKey{"p", "l"}]
	s.mu.RUnlock()
	for start := 0; start < len(order); start += per {
		g := protocol.LogGroup{Topic: "t"}
		for _, i := range order[start:min(start+per, len(order))] {
			l := logs[i]
			word := "miss"
			if l.hit {
				word = "hit"
			}
			g.Logs = append(g.Logs, protocol.Log{Time: uint32(l.t), TimeNs: l.ns, HasTimeNs: true, Contents: []protocol.LogContent{
				{Key: "seq", Value: strconv.Itoa(l.seq)}, {Key: "word", Value: word}}})
		}
		require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{g}, time.Now()))
		require.NoError(t, s.waitLoaded(ctx, ls)) // one load per write: many segments
	}
}

// pageSeqs pages through a search by offset, as the console does, and
// returns the seqs in the order received.
func pageSeqs(t *testing.T, s *Store, query string, from, to int64, reverse bool, line int) []int {
	t.Helper()
	var out []int
	for off := 0; ; off += line {
		res, err := s.Search(context.Background(), "p", "l", store.SearchRequest{From: time.Unix(from, 0), To: time.Unix(to, 0), Query: query, Line: line, Offset: off, Reverse: reverse})
		require.NoError(t, err)
		for _, row := range res.Rows {
			for _, f := range row {
				if f.Key == "seq" {
					n, err := strconv.Atoi(f.Value)
					require.NoError(t, err)
					out = append(out, n)
				}
			}
		}
		if len(res.Rows) < line {
			return out
		}
	}
}

// TestPagesAcrossSegments checks newest-first and oldest-first pages of a
// search over many overlapping segments with equal timestamps: every
// matching log exactly once, in time order, whatever the page size, also
// when pages come from the keys kept for the search and new segments
// (loads, a compaction) appear between pages.
func TestPagesAcrossSegments(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	idx := &index.Config{Line: &index.LineConfig{Token: index.DefaultTokens()}, Keys: map[string]index.KeyConfig{"word": {Type: index.TypeText, Token: index.DefaultTokens()}}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: idx}))
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 1))
	const base = 1_700_000_000
	logs := make([]pageLog, 3000)
	for i := range logs {
		// 300 distinct seconds, 4 distinct ns: many exact ties.
		logs[i] = pageLog{t: base + int64(r.IntN(300)), ns: uint32(r.IntN(4)), seq: i, hit: r.IntN(3) == 0}
	}
	writePageLogs(t, s, logs, 25, r)

	want := func(from, to int64, onlyHits, reverse bool) []pageLog {
		var out []pageLog
		for _, l := range logs {
			if l.t >= from && l.t < to && (!onlyHits || l.hit) {
				out = append(out, l)
			}
		}
		slices.SortStableFunc(out, func(a, b pageLog) int {
			c := int(a.t-b.t)*10 + int(a.ns) - int(b.ns)
			if reverse {
				return -c
			}
			return c
		})
		return out
	}
	check := func(name string, got []int, exp []pageLog) {
		t.Helper()
		require.Len(t, got, len(exp), name)
		seen := map[int]bool{}
		bySeq := map[int]pageLog{}
		for _, l := range logs {
			bySeq[l.seq] = l
		}
		for i, seq := range got {
			require.False(t, seen[seq], "%s: seq %d twice", name, seq)
			seen[seq] = true
			l := bySeq[seq]
			require.Equal(t, exp[i].t, l.t, "%s: position %d", name, i)
			require.Equal(t, exp[i].ns, l.ns, "%s: position %d", name, i)
		}
	}
	for _, c := range []struct {
		name     string
		query    string
		from, to int64
		hits     bool
	}{
		{"all", "*", base, base + 300, false},
		{"window", "*", base + 100, base + 200, false},
		{"search", "hit", base, base + 300, true},
		{"key", "word:hit", base + 50, base + 250, true},
	} {
		for _, reverse := range []bool{true, false} {
			for _, line := range []int{100, 37} {
				name := c.name + "/reverse=" + strconv.FormatBool(reverse) + "/line=" + strconv.Itoa(line)
				check(name, pageSeqs(t, s, c.query, c.from, c.to, reverse, line), want(c.from, c.to, c.hits, reverse))
			}
		}
	}

	// New segments outside the range between pages (as live ingestion
	// makes them) and enough small ones for a compaction: pages still add
	// up to every log once.
	res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(base, 0), To: time.Unix(base+300, 0), Query: "*", Line: 100, Reverse: true})
	require.NoError(t, err)
	got := []int{}
	for _, row := range res.Rows {
		for _, f := range row {
			if f.Key == "seq" {
				n, _ := strconv.Atoi(f.Value)
				got = append(got, n)
			}
		}
	}
	later := make([]pageLog, 400)
	for i := range later {
		later[i] = pageLog{t: base + 1000 + int64(i), seq: 10_000 + i}
	}
	writePageLogs(t, s, later, 10, r)
	got = append(got, pageSeqs(t, s, "*", base, base+300, true, 100)[100:]...)
	check("with loads between pages", got, want(base, base+300, false, true))
}

// TestDeepPages checks that a page deeper than the keys a search keeps
// (found by counting and OFFSET instead) continues the same order.
func TestDeepPages(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: &index.Config{Line: &index.LineConfig{}}}))
	r := rand.New(rand.NewPCG(1, 2))
	const base = 1_700_000_000
	logs := make([]pageLog, maxPageKeys+500)
	for i := range logs {
		logs[i] = pageLog{t: base + int64(i/4)*60, seq: i} // four logs a timestamp, a timestamp a minute: 3.5 days
	}
	writePageLogs(t, s, logs, 6, r)
	// Pages of 100 from offset maxPageKeys-300 on: the first three from the
	// keys of the search, the rest by OFFSET; together every log once.
	seen := map[string]bool{}
	to := time.Unix(base+int64(len(logs))*60, 0)
	for off := maxPageKeys - 300; off < len(logs); off += 100 {
		res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(base, 0), To: to, Query: "*", Line: 100, Offset: off, Reverse: true})
		require.NoError(t, err)
		require.Len(t, res.Rows, min(100, len(logs)-off))
		for i, row := range res.Rows {
			want := base + int64(len(logs)-1-off-i)/4*60
			require.Equal(t, strconv.FormatInt(want, 10), row[0].Value, "offset %d", off+i)
			for _, f := range row {
				if f.Key == "seq" {
					require.False(t, seen[f.Value], "seq %s twice (offset %d)", f.Value, off+i)
					seen[f.Value] = true
				}
			}
		}
	}
	require.Len(t, seen, 800)
}
