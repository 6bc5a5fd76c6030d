package abuse

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMemoryPressure: every tenant's queries share DuckDB's memory. While
// one project runs memory-hungry queries in a loop (as many at once as its
// per-project query slots allow), another project's ordinary queries must
// all succeed: either at once, or after a 503 ServerBusy with Retry-After
// (as the SDKs retry), never a 400 that tells the victim its query is too
// big. Before, an out-of-memory caused by the abuser's queries was
// answered to the victim as its own query-memory limit (400). And the
// abuser, whose queries always ran beside the victim's, must get the 400
// naming query-memory, not only 503s its SDK would retry for ever.
func TestMemoryPressure(t *testing.T) {
	s := startServer(t)
	watch := watchRSS(t, s.proc.Cmd.Process.Pid)
	s.provision("victim", 3000)
	s.provision("attacker", 1000)
	readSecret := s.createKey("attacker-read", "attacker", "read")
	victimSecret := s.createKey("victim-read", "victim", "read")

	// Each collects 200 million numbers into one list: far past DuckDB's
	// memory_limit (1GB), which a list cannot spill past, within seconds;
	// while it grows, DuckDB's memory is full for every query.
	hungry := "* | select len(list(a.range)) as m from range(1000000) a, range(200) b"
	const abusers = 4 // --max-queries-per-project
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var abuserRuns, abuserRefused, abuserTooBig atomic.Int64
	var abuserUnexpected sync.Map
	for range abusers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := s.getLogs("attacker-read", readSecret, "attacker", hungry)
				abuserRuns.Add(1)
				switch {
				case r.err != nil:
					abuserUnexpected.Store(r.err.Error(), true)
				case r.status == http.StatusBadRequest && r.code == "QueryLimitExceeded" && strings.Contains(r.message, "query-memory"):
					abuserRefused.Add(1)
					abuserTooBig.Add(1)
				case r.status == http.StatusBadRequest || r.status == http.StatusServiceUnavailable:
					abuserRefused.Add(1)
				default:
					abuserUnexpected.Store(fmt.Sprintf("%d %s %.200s", r.status, r.code, r.message), true)
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// The victim runs its queries one after the other, each retried after
	// a 503 as the SDKs do, until it answers. Any other answer fails.
	// It goes on until each abuser's query has run out of memory at least
	// once, so the victim's queries ran while DuckDB's memory was full,
	// and until the abuser has had a 400 (a 503 when its query could not
	// run again without the victim's in time is allowed), or 5 minutes.
	const victimQueries, maxAttempts = 30, 100
	busy, answered := 0, 0
	until := time.Now().Add(5 * time.Minute)
	for i := 0; (i < victimQueries || abuserRefused.Load() < abusers || abuserTooBig.Load() == 0) && time.Now().Before(until); i++ {
		answered++
		for attempt := 1; ; attempt++ {
			r := s.getLogs("victim-read", victimSecret, "victim", "level: error | select count(*) as n, max(length(msg)) as l")
			require.NoError(t, r.err)
			if r.status == http.StatusServiceUnavailable {
				require.Equal(t, "ServerBusy", r.code)
				require.NotContains(t, r.message, "attacker", "another project named")
				busy++
				require.Less(t, attempt, maxAttempts, "victim query %d never got through: %s", i, r.message)
				time.Sleep(time.Second) // Retry-After: 1
				continue
			}
			require.Equal(t, http.StatusOK, r.status, "victim query %d, attempt %d: %s %s", i, attempt, r.code, r.message)
			require.Contains(t, string(r.body), `"n":"1000"`)
			break
		}
	}
	close(stop)
	wg.Wait()
	watch.Stop()

	m := metricsText(t, s)
	t.Logf("victim: %d queries answered, %d retries after 503; abuser: %d memory-hungry queries, %d refused, %d of them 400 query-memory; peak RSS %d MiB (DuckDB's allocations peaked at %.0f MiB of %.0f)",
		answered, busy, abuserRuns.Load(), abuserRefused.Load(), abuserTooBig.Load(), watch.peak.Load()>>20,
		metricValue(m, "sluice_store_duckdb_memory_peak_bytes")/(1<<20), metricValue(m, "sluice_store_duckdb_memory_limit_bytes")/(1<<20))
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "sluice_store_query_limit_hits_total") || strings.HasPrefix(l, "sluice_store_queries_rejected_total") ||
			strings.HasPrefix(l, "sluice_store_query_memory_reruns_total") {
			t.Log(l)
		}
	}
	abuserUnexpected.Range(func(k, _ any) bool { t.Errorf("abuser got %s", k); return true })
	require.Positive(t, abuserRefused.Load(), "the abuser's queries never ran out of memory: the probe probed nothing")
	// The victim queried all along, so each abuser query shared DuckDB with
	// it; the abuser must still learn that its query is too big (a 503
	// would have its SDK retry it for ever).
	require.Positive(t, abuserTooBig.Load(), "the abuser never got the 400 naming query-memory")
	require.Contains(t, m, `sluice_store_query_limit_hits_total{limit="query-memory"}`)
	require.Less(t, watch.peak.Load(), int64(maxRSS), "server RSS went past the bound")
	require.True(t, s.proc.Running(), "server died:\n%s", s.proc.LogTail())
}
