package console_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTailSeesEveryLine tails a search while numbered logs are written
// faster than a page holds, out of time order (a quarter carry a time
// minutes old, as late logs do), across both shards: every matching log
// must come exactly once, and none that does not match.
func TestTailSeesEveryLine(t *testing.T) {
	e := start(t)
	e.setup("web", "access")
	b := e.browser()
	b.signIn(adminID, adminSecret)

	tail := func(cursors map[string]any, since int64) (map[string]any, []map[string]any, bool) {
		t.Helper()
		st, out, _ := b.do("POST", "/console/api/tail", map[string]any{"project": "web", "logstore": "access", "query": "status:200 and path:tail", "cursors": cursors, "since": since}, nil)
		require.Equal(t, http.StatusOK, st, "%v", out)
		var rows []map[string]any
		for _, r := range out["rows"].([]any) {
			rows = append(rows, r.(map[string]any))
		}
		return out["cursors"].(map[string]any), rows, out["more"].(bool)
	}
	cursors, rows, _ := tail(nil, 0)
	require.Len(t, cursors, 2, "one cursor per shard")
	require.Empty(t, rows, "the first call starts at the end")

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	const total = 3000
	var wg sync.WaitGroup
	wg.Add(1)
	want := map[string]bool{}
	var mu sync.Mutex
	go func() {
		defer wg.Done()
		// 3,000 logs in 60 writes of 50, ~1,000 lines/s: 30 times a 100-row page per 3 s.
		for w := 0; w < total/50; w++ {
			var batch []accessLog
			for i := w * 50; i < (w+1)*50; i++ {
				st := "200"
				if r.IntN(4) == 0 {
					st = "500"
				}
				at := time.Now()
				if r.IntN(4) == 0 {
					at = at.Add(-time.Duration(r.IntN(600)) * time.Second)
				}
				batch = append(batch, accessLog{t: at, method: "GET", path: fmt.Sprintf("/tail/%d", i), status: st, latency: i})
				if st == "200" {
					mu.Lock()
					want[strconv.Itoa(i)] = true
					mu.Unlock()
				}
			}
			e.ingest("web", "access", batch)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	seen := map[string]int{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	finished := false
	for calls := 0; ; calls++ {
		require.Less(t, calls, 10_000)
		var more bool
		cursors, rows, more = tail(cursors, 0)
		for _, row := range rows {
			require.Equal(t, "200", row["status"])
			seen[row["latency"].(string)]++
		}
		if finished && !more && len(rows) == 0 {
			break
		}
		select {
		case <-done:
			finished = true
		default:
			time.Sleep(300 * time.Millisecond)
		}
	}
	for seq, n := range seen {
		require.Equal(t, 1, n, "log %s came %d times", seq, n)
		require.True(t, want[seq], "log %s does not match", seq)
	}
	require.Len(t, seen, len(want), "every matching log once")

	// Since: a tail may start at a receive time (the console starts it
	// just before the search it shows).
	// More than one reply holds (2,000 rows): "more" until all came.
	cursors, rows, more := tail(nil, time.Now().Add(-time.Hour).Unix())
	// A reply stops after the log group that reached 2,000 rows (groups of 50 here).
	require.True(t, more)
	require.GreaterOrEqual(t, len(rows), 2000)
	require.Less(t, len(rows), 2050)
	again := map[string]bool{}
	for _, row := range rows {
		again[row["latency"].(string)] = true
	}
	for more {
		cursors, rows, more = tail(cursors, 0)
		for _, row := range rows {
			require.False(t, again[row["latency"].(string)], "log %s twice", row["latency"])
			again[row["latency"].(string)] = true
		}
	}
	require.Len(t, again, len(want), "from a receive time: every matching log once")

	// A search with SQL cannot be tailed; the error says what to do.
	st, out, _ := b.do("POST", "/console/api/tail", map[string]any{"project": "web", "logstore": "access", "query": "* | select count(*)"}, nil)
	require.Equal(t, http.StatusBadRequest, st)
	require.True(t, strings.Contains(out["errorMessage"].(string), "remove the | SQL part"), "%v", out)
}
