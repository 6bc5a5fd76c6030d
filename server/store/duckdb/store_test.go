package duckdb

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(durabilityChild())
	}
	if os.Getenv(walChildEnv) != "" {
		os.Exit(walChild())
	}
	if os.Getenv(shardChildEnv) != "" {
		os.Exit(shardChild())
	}
	goleak.VerifyTestMain(m)
}

func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Threads == 0 {
		cfg.Threads = 2
	}
	if cfg.MemoryLimit == "" {
		cfg.MemoryLimit = "512MB"
	}
	s, err := Open(cfg, Settings{Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store {
		cfg := Config{}
		if o.SmallQueue {
			cfg.QueueBytes = 1 << 20
		}
		return open(t, cfg)
	})
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	g := protocoltest.NginxLogGroup(32 << 10)
	s, err := Open(Config{DataDir: dir}, Settings{})
	require.NoError(t, err)
	idx := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{"status": {Type: index.TypeLong, DocValue: true}}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: idx}))
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	require.ErrorIs(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()), errClosed)

	s = open(t, Config{DataDir: dir})
	res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select count(status) as c"})
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(len(g.Logs)), res.Rows[0][0].Value)
}

const childEnv = "SLUICE_DUCKDB_DURABILITY_CHILD"

// durabilityChild writes groups forever, printing "acked N" after each
// Write returns; the parent SIGKILLs it and checks every acked log is there.
func durabilityChild() int {
	dir := os.Getenv(childEnv)
	s, err := Open(Config{DataDir: dir, Threads: 1}, Settings{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	if err := s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	g := protocoltest.NginxLogGroup(16 << 10)
	for i := 0; ; i++ {
		for j := range g.Logs {
			g.Logs[j].Time = 1709632800 + uint32(i)
		}
		if err := s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("acked %d %d\n", i+1, len(g.Logs))
	}
}

func TestDurabilityKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	var acked, perGroup int
	buf := make([]byte, 0, 4096)
	deadline := time.Now().Add(60 * time.Second)
	// Read acks until a good number of writes were acknowledged.
	for acked < 20 && time.Now().Before(deadline) {
		b := make([]byte, 4096)
		n, err := out.Read(b)
		require.NoError(t, err)
		buf = append(buf, b[:n]...)
		for {
			i := indexByte(buf, '\n')
			if i < 0 {
				break
			}
			if _, err := fmt.Sscanf(string(buf[:i]), "acked %d %d", &acked, &perGroup); err != nil {
				t.Fatalf("child said %q", buf[:i])
			}
			buf = buf[i+1:]
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.GreaterOrEqual(t, acked, 20)

	s := open(t, Config{DataDir: dir})
	res, err := s.Search(context.Background(), "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select count(*) as c"})
	require.NoError(t, err)
	got, err := strconv.Atoi(res.Rows[0][0].Value)
	require.NoError(t, err)
	// Writes acknowledged before the kill are all there; a write in flight
	// may or may not be.
	require.GreaterOrEqual(t, got, acked*perGroup)
	require.Zero(t, got%perGroup, "no partial group")
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

func TestConfigValidate(t *testing.T) {
	_, err := Open(Config{}, Settings{})
	require.ErrorContains(t, err, "DataDir")
	_, err = Open(Config{DataDir: t.TempDir(), QueueBytes: -1}, Settings{})
	require.ErrorContains(t, err, "negative")
}

func TestSQLIsSandboxedByConfiguration(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	for _, q := range []string{"SELECT * FROM read_csv('/etc/passwd')", "SET enable_external_access = true", "ATTACH '/tmp/x.duckdb' AS x"} {
		_, err := s.db.ExecContext(ctx, q)
		require.Error(t, err, q)
	}
}

// A write converted under an older index is reshaped to the current one
// when it is committed (the index changed while it was queued).
func TestWriteQueuedAcrossIndexChange(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: &index.Config{Line: &index.LineConfig{}}}))
	s.mu.RLock()
	ls := s.logstores[lsKey{"p", "l"}]
	old := ls.schema
	s.mu.RUnlock()
	g := protocoltest.NginxLogGroup(8 << 10)
	parts, n, _ := buildRows(nil, ls, old, math.MinInt32, []protocol.LogGroup{*g}, time.Now())

	idx := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{"status": {Type: index.TypeLong}, "method": {Type: index.TypeText}}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: idx}))
	req := &writeReq{parts: parts, bytes: n, done: make(chan error, 1)}
	req.nrows = req.rows()
	s.queuedBytes.Add(n)
	s.lq.mu.Lock()
	req.end = s.lq.lastEnd + 1 // a position past everything loaded
	s.lq.mu.Unlock()
	s.enqueue([]*writeReq{req}) // as the WAL does once the record is synced

	want := map[string]int{}
	for i := range g.Logs {
		want[value(&g.Logs[i], "method")+"/"+value(&g.Logs[i], "status")]++
	}
	res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0),
		Query: "* | select method || '/' || cast(status as varchar) as k, count(*) as c group by k"})
	require.NoError(t, err)
	got := map[string]int{}
	for _, row := range res.Rows {
		c, err := strconv.Atoi(row[1].Value)
		require.NoError(t, err)
		got[row[0].Value] = c
	}
	require.Equal(t, want, got)
}

func value(l *protocol.Log, key string) string {
	for _, c := range l.Contents {
		if c.Key == key {
			return c.Value
		}
	}
	return ""
}

func TestExpiredLogsAreCountedNotStored(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", TTLDays: 7}))
	g := protocoltest.NginxLogGroup(4 << 10)
	fresh := g.Clone()
	for i := range g.Logs {
		g.Logs[i].Time = uint32(time.Now().Add(-30 * 24 * time.Hour).Unix())
		fresh.Logs[i].Time = uint32(time.Now().Unix())
	}
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g, *fresh}, time.Now()))
	require.Equal(t, float64(len(g.Logs)), testutil.ToFloat64(s.m.expiredDropped))
	// Searching loads every acknowledged write.
	res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select count(*) as c"})
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(len(fresh.Logs)), res.Rows[0][0].Value)
	s.mu.RLock()
	days := len(s.logstores[lsKey{"p", "l"}].segs)
	s.mu.RUnlock()
	require.Equal(t, 1, days, "no partition for the expired day")
}

// A query whose context ends is interrupted: Search returns once DuckDB
// has stopped it (nothing runs on after the answer), and its slot frees.
// While every slot is taken, another query waits QueueTimeout, then gets
// store.ErrOverloaded.
func TestQueryCancelAndSlots(t *testing.T) {
	s := open(t, Config{MaxQueries: 1, QueueTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l"}))
	slow := store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select count(*) as c from range(100000000000)"}

	qctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Search(qctx, "p", "l", slow)
		errc <- err
	}()
	// While it runs, the only slot is taken.
	require.Eventually(t, func() bool { return testutil.ToFloat64(s.m.queriesRunning) == 1 }, 10*time.Second, 10*time.Millisecond)
	start := time.Now()
	_, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1, 0), Query: "*"})
	require.ErrorIs(t, err, store.ErrOverloaded)
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "waited for a slot first")
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.queriesRejected))

	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("Search did not return after its context was cancelled")
	}
	// Returned means stopped: the slot is free at once.
	require.Equal(t, 0.0, testutil.ToFloat64(s.m.queriesRunning))
	_, err = s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1, 0), Query: "*"})
	require.NoError(t, err)
}

// A project may hold at most MaxQueriesPerProject slots; other projects
// still get theirs.
func TestQuerySlotsPerProject(t *testing.T) {
	s := open(t, Config{MaxQueries: 3, MaxQueriesPerProject: 1, QueueTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	for _, p := range []string{"a", "b"} {
		require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: p, Logstore: "l"}))
	}
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = s.Search(qctx, "a", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select count(*) as c from range(100000000000)"})
	}()
	require.Eventually(t, func() bool { return testutil.ToFloat64(s.m.queriesRunning) == 1 }, 10*time.Second, 10*time.Millisecond)
	quick := store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1, 0), Query: "*"}
	_, err := s.Search(ctx, "a", "l", quick)
	require.ErrorIs(t, err, store.ErrOverloaded, "project a already holds its slot")
	_, err = s.Search(ctx, "b", "l", quick)
	require.NoError(t, err, "project b is not held up by a")
	cancel()
	<-done
}

// Tags with a field index ("__tag__:__hostname__" in the index, as the
// Log Service console creates them) are columns of that name in SQL, read
// from the group's tags; __tag__:__receive_time__ is the server's receive
// time.
func TestSQLReadsIndexedTags(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	idx := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{
		"status":                   {Type: index.TypeLong, DocValue: true},
		"__tag__:__hostname__":     {Type: index.TypeText, DocValue: true},
		"__tag__:shard":            {Type: index.TypeLong, DocValue: true},
		"__tag__:__receive_time__": {Type: index.TypeText, DocValue: true},
	}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: idx}))
	group := func(host, shard string, n int) protocol.LogGroup {
		g := protocol.LogGroup{LogTags: []protocol.LogTag{{Key: "__hostname__", Value: host}, {Key: "shard", Value: shard}}}
		for range n {
			g.Logs = append(g.Logs, protocol.Log{Time: 1700000000, Contents: []protocol.LogContent{{Key: "status", Value: "200"}}})
		}
		return g
	}
	received := time.Unix(1700000100, 0)
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{group("web-1", "3", 2), group("web-2", "4", 1)}, received))

	res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0),
		Query: `* | select "__tag__:__hostname__" as host, sum("__tag__:shard") as shards, count(*) as c, max("__tag__:__receive_time__") as r group by host order by host`})
	require.NoError(t, err)
	var got [][]string
	for _, row := range res.Rows {
		var r []string
		for _, f := range row {
			r = append(r, f.Value)
		}
		got = append(got, r)
	}
	require.Equal(t, [][]string{{"web-1", "6", "2", "1700000100"}, {"web-2", "4", "1", "1700000100"}}, got)

	// The search side agrees.
	res, err = s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0),
		Query: `__tag__:__hostname__:web-2 | select count(*) as c`})
	require.NoError(t, err)
	require.Equal(t, "1", res.Rows[0][0].Value)
}
