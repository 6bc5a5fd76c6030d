package app_test

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	consumer "github.com/aliyun/aliyun-log-go-sdk/consumer"
	"github.com/go-kit/kit/log"
	"github.com/stretchr/testify/require"
)

// received collects what consumers processed: per shard, the numbers of
// the groups in the order processed, and which consumer processed them.
type received struct {
	mu     sync.Mutex
	shards map[int][]int
	by     map[string]map[int]bool // consumer -> shards it processed
	dups   []string
	seen   map[int]bool
}

func newReceived() *received {
	return &received{shards: map[int][]int{}, by: map[string]map[int]bool{}, seen: map[int]bool{}}
}

func (r *received) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *received) shardsOf(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.by[name])
}

// worker starts an unchanged Go SDK consumer library worker named name
// in group cg; it saves its checkpoint after each processed batch (as
// documented for InitConsumerWorkerWithCheckpointTracker), flushed when
// the library decides (shutdown, hand-over).
func worker(e *env, project, logstore, cg, name string, r *received) *consumer.ConsumerWorker {
	opt := consumer.LogHubConfig{
		Endpoint: e.Host(), AccessKeyID: adminID, AccessKeySecret: adminSecret,
		Project: project, Logstore: logstore, ConsumerGroupName: cg, ConsumerName: name,
		CursorPosition:            consumer.BEGIN_CURSOR,
		HeartbeatIntervalInSecond: 1,
		DataFetchIntervalInMs:     50,
		MaxFetchLogGroupCount:     7,
		HTTPClient:                e.HTTPClient(),
		Logger:                    log.NewNopLogger(),
		DisableRuntimeMetrics:     true,
	}
	w := consumer.InitConsumerWorkerWithCheckpointTracker(opt, func(shard int, gl *sls.LogGroupList, ct consumer.CheckPointTracker) (string, error) {
		r.mu.Lock()
		for _, g := range gl.LogGroups {
			n, _ := strconv.Atoi(g.Logs[0].Contents[0].GetValue())
			if r.seen[n] {
				r.dups = append(r.dups, fmt.Sprintf("group %d again, shard %d, by %s", n, shard, name))
			}
			r.seen[n] = true
			r.shards[shard] = append(r.shards[shard], n)
			if r.by[name] == nil {
				r.by[name] = map[int]bool{}
			}
			r.by[name][shard] = true
		}
		r.mu.Unlock()
		return "", ct.SaveCheckPoint(false)
	})
	w.Start()
	return w
}

// producer writes numbered groups (one log each) to the shards in turn by
// hash key, remembering which shard each went to.
type producer struct {
	t      *testing.T
	c      sls.ClientInterface
	p, ls  string
	keys   []string
	next   int
	shard  map[int]int
	shards int
}

func newProducer(t *testing.T, e *env, c sls.ClientInterface, project, logstore string, shards int) *producer {
	p := &producer{t: t, c: c, p: project, ls: logstore, shard: map[int]int{}, shards: shards}
	for s := range shards {
		p.keys = append(p.keys, hashKeyFor(t, c, project, logstore, s))
	}
	return p
}

func (p *producer) write(n int) {
	p.t.Helper()
	for range n {
		s := p.next % p.shards
		require.NoError(p.t, p.c.PostLogStoreLogs(p.p, p.ls, numberedGroup("c", p.next, 1), &p.keys[s]))
		p.shard[p.next] = s
		p.next++
	}
}

// check asserts every group written was processed exactly once, and in
// write order within each shard.
func (p *producer) check(r *received) {
	p.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(p.t, r.dups)
	require.Len(p.t, r.seen, p.next)
	for s, got := range r.shards {
		var want []int
		for n := range p.next {
			if p.shard[n] == s {
				want = append(want, n)
			}
		}
		require.Equal(p.t, want, got, "shard %d in order", s)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitConsumersGone waits for the library's heartbeat goroutines, which
// StopAndWait does not wait for, so goleak sees none.
func waitConsumersGone(t *testing.T) {
	t.Helper()
	waitFor(t, "consumer library goroutines to exit", func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "consumerLibrary")
	})
}

// The Go SDK's consumer library, unchanged, consumes every log exactly
// once and in order per shard across a restart of the consumer: it
// resumes from the checkpoints it saved when it stopped.
func TestConsumerLibraryRestart(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project, logstore = "consume", "events"
	_, err := c.CreateProject(project, "")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore(project, logstore, 7, 2, false, 0))
	p := newProducer(t, e, c, project, logstore, 2)
	r := newReceived()

	p.write(40)
	w := worker(e, project, logstore, "cg", "worker-1", r)
	waitFor(t, "the first 40 groups", func() bool { return r.total() >= 40 })
	p.write(20) // while it runs
	waitFor(t, "60 groups", func() bool { return r.total() >= 60 })
	w.StopAndWait()

	cps, err := c.GetCheckpoint(project, logstore, "cg")
	require.NoError(t, err)
	require.Len(t, cps, 2)
	for _, cp := range cps {
		end, err := c.GetCursor(project, logstore, cp.ShardID, "end")
		require.NoError(t, err)
		require.Equal(t, end, cp.CheckPoint, "shard %d: the checkpoint saved at shutdown is the end", cp.ShardID)
		require.Equal(t, "worker-1", cp.Consumer)
	}

	p.write(30) // while no consumer runs
	w = worker(e, project, logstore, "cg", "worker-1", r)
	waitFor(t, "90 groups", func() bool { return r.total() >= 90 })
	time.Sleep(500 * time.Millisecond) // anything more would be a duplicate
	w.StopAndWait()
	p.check(r)

	groups, err := c.ListConsumerGroup(project, logstore)
	require.NoError(t, err)
	require.Len(t, groups, 1)
	require.Equal(t, "cg", groups[0].ConsumerGroupName)
	require.Equal(t, 3, groups[0].Timeout)
	waitConsumersGone(t)
}

// Two consumers of one group split the shards (the second joins while
// the first holds them all and data flows; shards are handed over
// through the checkpoint), and together process every log exactly once,
// in order per shard.
func TestConsumerLibraryTwoConsumers(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project, logstore = "consume-two", "events"
	_, err := c.CreateProject(project, "")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore(project, logstore, 7, 4, false, 0))
	p := newProducer(t, e, c, project, logstore, 4)
	r := newReceived()

	p.write(40)
	a := worker(e, project, logstore, "cg", "a", r)
	waitFor(t, "a to hold every shard", func() bool { return r.shardsOf("a") == 4 })
	b := worker(e, project, logstore, "cg", "b", r)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.write(1)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	waitFor(t, "b to get two shards", func() bool { return r.shardsOf("b") == 2 })
	close(stop)
	<-done
	waitFor(t, "every group", func() bool { return r.total() >= p.next })
	time.Sleep(500 * time.Millisecond)
	a.StopAndWait()
	b.StopAndWait()
	p.check(r)
	r.mu.Lock()
	for s := range 4 {
		require.True(t, r.by["a"][s] || r.by["b"][s])
	}
	r.mu.Unlock()

	cps, err := c.GetCheckpoint(project, logstore, "cg")
	require.NoError(t, err)
	holders := map[string]int{}
	for _, cp := range cps {
		holders[cp.Consumer]++
	}
	require.Equal(t, map[string]int{"a": 2, "b": 2}, holders, "each saved the checkpoints of its two shards last")
	waitConsumersGone(t)
}
