package scaleout

import (
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sdk "github.com/aliyun/aliyun-log-go-sdk"
	consumer "github.com/aliyun/aliyun-log-go-sdk/consumer"
	"github.com/go-kit/kit/log"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// consumed is what the consumers processed: each number once (else a
// duplicate), per shard in the order processed, and who processed it.
type consumed struct {
	mu    sync.Mutex
	seen  map[int]bool
	shard map[int][]int
	by    map[string]int // consumer -> groups processed
	dups  []string
}

func (r *consumed) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *consumed) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.by[name]
}

// startConsumer runs the Go SDK's consumer library, unchanged, as
// consumer name of group "cg" against one node. Its processor commits a
// batch together with its checkpoint: the batch counts as processed only
// once the checkpoint is saved (SaveCheckPoint(true)); if saving fails
// (the node is down) the library calls it again with the same batch. So
// a consumer or node dying between processing and checkpointing makes no
// duplicate, and anything processed twice is the server's doing.
func startConsumer(n *node, name string, r *consumed) *consumer.ConsumerWorker {
	opt := consumer.LogHubConfig{
		Endpoint: n.listen, AccessKeyID: adminID, AccessKeySecret: adminSecret,
		Project: "consume", Logstore: "events", ConsumerGroupName: "cg", ConsumerName: name,
		CursorPosition:            consumer.BEGIN_CURSOR,
		HeartbeatIntervalInSecond: 1,
		// Generous: a node SIGKILLed and restarted on a loaded machine
		// comes back well within it, so its consumer keeps its shards.
		HeartbeatTimeoutInSecond: 90,
		DataFetchIntervalInMs:    50,
		MaxFetchLogGroupCount:    7,
		HTTPClient:               httpClient(n.listen),
		Logger:                   log.NewNopLogger(),
		DisableRuntimeMetrics:    true,
	}
	w := consumer.InitConsumerWorkerWithCheckpointTracker(opt, func(shard int, gl *sdk.LogGroupList, ct consumer.CheckPointTracker) (string, error) {
		if err := ct.SaveCheckPoint(true); err != nil {
			return "", err // not committed: processed again
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, g := range gl.LogGroups {
			v, _ := strconv.Atoi(g.Logs[0].Contents[0].GetValue())
			if r.seen[v] {
				r.dups = append(r.dups, fmt.Sprintf("%d again, shard %d, by %s", v, shard, name))
			}
			r.seen[v] = true
			r.shard[shard] = append(r.shard[shard], v)
			r.by[name]++
		}
		return "", nil
	})
	w.Start()
	return w
}

// shardKeys returns a hash key routing to each shard.
func shardKeys(t *testing.T, c *sdk.Client, project, logstore string) []string {
	shards, err := c.ListShards(project, logstore)
	require.NoError(t, err)
	var keys []string
	for s := range shards {
		for i := 0; ; i++ {
			k := fmt.Sprintf("%x", md5.Sum([]byte(strconv.Itoa(i))))
			if k >= shards[s].InclusiveBeginKey && (s == len(shards)-1 || k < shards[s].ExclusiveBeginKey) {
				keys = append(keys, k)
				break
			}
		}
	}
	return keys
}

// TestConsumersOnTwoNodes: two consumers of one group, each talking to
// a different node of two (PostgreSQL + SeaweedFS), split the four
// shards; writers send numbered groups to both nodes. The consumers are
// restarted, each onto the other node (resuming from checkpoints saved
// through the first); then the node one of them talks to is SIGKILLed at
// a random moment under load and started again. Every acknowledged group
// is consumed exactly once (a write that failed at the kill: at most
// once), and each writer's groups in its write order within each shard.
func TestConsumersOnTwoNodes(t *testing.T) {
	c := newCluster(t)
	nodes := []*node{c.start("node0"), c.start("node1")}
	cl := nodes[0].client
	_, err := cl.CreateProject("consume", "")
	require.NoError(t, err)
	require.NoError(t, cl.CreateLogStore("consume", "events", 7, 4, false, 0))
	keys := shardKeys(t, cl, "consume", "events")

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	type write struct {
		shard int
		acked bool
	}
	var (
		wmu    sync.Mutex
		writes = map[int]write{} // number -> where and whether acknowledged
		stop   = make(chan struct{})
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newClient(nodes[w].listen)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := w*1_000_000 + i
				s := i % len(keys)
				g := &sdk.LogGroup{Topic: proto.String("e2e"), Source: proto.String("w" + strconv.Itoa(w)),
					Logs: []*sdk.Log{{Time: proto.Uint32(uint32(time.Now().Unix())), Contents: []*sdk.LogContent{
						{Key: proto.String("n"), Value: proto.String(strconv.Itoa(v))}}}}}
				err := client.PostLogStoreLogs("consume", "events", g, &keys[s])
				wmu.Lock()
				writes[v] = write{s, err == nil}
				wmu.Unlock()
				if err != nil {
					failed.Add(1)
					time.Sleep(200 * time.Millisecond) // the node is down: try again later
					continue
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	acked := func() int {
		wmu.Lock()
		defer wmu.Unlock()
		n := 0
		for _, w := range writes {
			if w.acked {
				n++
			}
		}
		return n
	}

	r := &consumed{seen: map[int]bool{}, shard: map[int][]int{}, by: map[string]int{}}
	status := func() string {
		return fmt.Sprintf("%d groups acknowledged, %d writes failed; consumed: a %d, b %d", acked(), failed.Load(), r.count("a"), r.count("b"))
	}
	a := startConsumer(nodes[0], "a", r)
	b := startConsumer(nodes[1], "b", r)
	waitUntil(t, "both consumers to process groups", func() bool { return r.count("a") > 20 && r.count("b") > 20 }, status)

	// Restart both consumers, each onto the other node.
	a.StopAndWait()
	b.StopAndWait()
	before := map[string]int{"a": r.count("a"), "b": r.count("b")}
	a = startConsumer(nodes[1], "a", r)
	b = startConsumer(nodes[0], "b", r)
	waitUntil(t, "both restarted consumers to process groups", func() bool {
		return r.count("a") > before["a"]+20 && r.count("b") > before["b"]+20
	}, status)

	// Kill the node a talks to, at a random moment under load, and start
	// it again.
	time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
	nodes[1].proc.Signal(syscall.SIGKILL)
	require.True(t, nodes[1].proc.Exited(30*time.Second), "node1 did not die")
	t.Logf("killed node1 after %d acknowledged groups; a had processed %d, b %d", acked(), r.count("a"), r.count("b"))
	time.Sleep(time.Second)
	c.restart(nodes[1], "node1-restarted.log")
	before = map[string]int{"a": r.count("a"), "b": r.count("b")}
	waitUntil(t, "both consumers to go on after the restart", func() bool {
		return r.count("a") > before["a"]+20 && r.count("b") > before["b"]+20
	}, status)
	close(stop)
	wg.Wait()
	want := acked()
	waitUntil(t, "every acknowledged group to be consumed", func() bool { return r.total() >= want }, status)
	time.Sleep(2 * time.Second) // anything more would be a duplicate
	a.StopAndWait()
	b.StopAndWait()
	waitLibraryGone(t)

	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(t, r.dups, "groups consumed twice")
	wmu.Lock()
	defer wmu.Unlock()
	lost := 0
	for v, w := range writes {
		if w.acked && !r.seen[v] {
			lost++
			t.Errorf("acknowledged group %d (shard %d) was never consumed", v, w.shard)
		}
	}
	require.Zero(t, lost)
	for s, got := range r.shard {
		last := map[int]int{0: -1, 1: -1}
		for _, v := range got {
			w := v / 1_000_000
			require.Equal(t, s, writes[v].shard, "group %d consumed from shard %d, written to %d", v, s, writes[v].shard)
			require.Greater(t, v, last[w], "shard %d: writer %d's group %d after %d", s, w, v, last[w])
			last[w] = v
		}
	}
	t.Logf("%d groups acknowledged, %d writes failed while node1 was down; %d consumed (a %d, b %d), none twice, in order per shard",
		want, failed.Load(), len(r.seen), r.by["a"], r.by["b"])
}

// waitUntil waits for cond; on timeout it fails with what and, when
// given, status() (what the test had seen by then).
func waitUntil(t *testing.T, what string, cond func() bool, status ...func() string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			for _, s := range status {
				what += " (" + s() + ")"
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLibraryGone waits for the consumer library's heartbeat goroutines,
// which StopAndWait does not wait for, so goleak sees none.
func waitLibraryGone(t *testing.T) {
	t.Helper()
	waitUntil(t, "consumer library goroutines to exit", func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "consumerLibrary")
	})
}
