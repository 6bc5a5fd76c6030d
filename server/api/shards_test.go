package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/meta"
)

// PutLogs picks the shard: the hash key's range (/shards/route?key=), the
// __pack_id__ prefix's hash (one agent file stays in one shard), else
// round robin.
func TestPutLogsShardRouting(t *testing.T) {
	h := newHarness(t)
	require.NoError(t, h.meta.CreateLogstore(context.Background(), meta.Logstore{Project: "proj", Name: "four", TTL: 7, ShardCount: 4}))
	put := func(target string, tags ...protocol.LogTag) int {
		t.Helper()
		g := protocol.LogGroup{LogTags: tags, Logs: []protocol.Log{{Time: uint32(time.Now().Unix()), Contents: []protocol.LogContent{{Key: "k", Value: "v"}}}}}
		w := h.do(t, "POST", "proj.sluice.test", target, http.Header{}, protocol.AppendLogGroup(nil, &g))
		require.Equal(t, 200, w.Code, w.Body.String())
		return h.logs.shards[len(h.logs.shards)-1]
	}
	for key, want := range map[string]int{
		"00000000000000000000000000000000": 0,
		"3fffffffffffffffffffffffffffffff": 0,
		"40000000000000000000000000000000": 1,
		"bfffffffffffffffffffffffffffffff": 2,
		"ffffffffffffffffffffffffffffffff": 3,
		"c":                                3,
	} {
		require.Equal(t, want, put("/logstores/four/shards/route?key="+key), "key %s", key)
	}
	w := h.do(t, "POST", "proj.sluice.test", "/logstores/four/shards/route?key=zz", http.Header{}, protocol.AppendLogGroup(nil, &protocol.LogGroup{Logs: []protocol.Log{{Time: 1}}}))
	require.Equal(t, 400, w.Code)

	seen := map[int]bool{}
	for range 8 {
		seen[put("/logstores/four/shards/lb")] = true
	}
	require.Len(t, seen, 4, "round robin reaches every shard")

	first := put("/logstores/four", protocol.LogTag{Key: "__pack_id__", Value: "5FA51423DDB54FDA-1"})
	for i := range 10 {
		require.Equal(t, first, put("/logstores/four/shards/lb", protocol.LogTag{Key: "__pack_id__", Value: "5FA51423DDB54FDA-" + string(rune('2'+i))}),
			"one pack-id prefix, one shard")
	}
}
