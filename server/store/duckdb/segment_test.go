package duckdb

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
)

// segmentFiles lists the Parquet files under the store's segment dir.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dir, segmentsDir), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, filepath.Base(path))
		}
		return err
	})
	require.NoError(t, err)
	slices.Sort(out)
	return out
}

func count(t *testing.T, s *Store, query string) int {
	t.Helper()
	res, err := s.Search(context.Background(), "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: query})
	require.NoError(t, err)
	n, err := strconv.Atoi(res.Rows[0][0].Value)
	require.NoError(t, err)
	return n
}

// A logstore that receives little gets a segment per load; a day's small
// segments are merged into one, queries see every line exactly once
// throughout, and the replaced files are removed.
func TestSmallSegmentsAreMerged(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{DataDir: dir, FlushInterval: 20 * time.Millisecond, Threads: 2, MemoryLimit: "512MB"}, Settings{})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: benchIndex()}))
	g := protocoltest.NginxLogGroup(2 << 10)
	total := 0
	for range 3 * compactMin {
		require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()))
		total += len(g.Logs)
		// Every query loads what is pending: one small segment per write.
		require.Equal(t, total, count(t, s, "* | select count(*)"))
	}
	require.Eventually(t, func() bool { return testutil.ToFloat64(s.m.compactions) >= 2 }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, total, count(t, s, "* | select count(*)"))
	require.Equal(t, total/len(g.Logs), count(t, s, "status:200 and method:GET | select count(*)")/countIn(g, "status", "200", "method", "GET"))
	require.Zero(t, testutil.ToFloat64(s.m.compactionFailures))
	s.mu.RLock()
	var live []string
	for _, segs := range s.logstores[lsKey{"p", "l"}].segs {
		for _, sg := range segs {
			live = append(live, strconv.FormatInt(sg.id, 10)+".parquet")
		}
	}
	s.mu.RUnlock()
	slices.Sort(live)
	require.Less(t, len(live), 3*compactMin-compactMin)
	require.NoError(t, s.Close())
	require.Equal(t, live, segmentFiles(t, dir), "only the live segments are left on disk")

	s, err = Open(Config{DataDir: dir, Threads: 2, MemoryLimit: "512MB"}, Settings{})
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, total, count(t, s, "* | select count(*)"))
}

func countIn(g *protocol.LogGroup, kv ...string) int {
	n := 0
	for i := range g.Logs {
		ok := true
		for j := 0; j < len(kv); j += 2 {
			ok = ok && value(&g.Logs[i], kv[j]) == kv[j+1]
		}
		if ok {
			n++
		}
	}
	return n
}

// Files of a load or merge that crashed before its catalog transaction
// committed are removed at Open; committed data is untouched.
func TestLeftoverSegmentFilesAreRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{DataDir: dir, Threads: 2}, Settings{})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l"}))
	g := protocoltest.NginxLogGroup(4 << 10)
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()))
	require.NoError(t, s.Close())
	live := segmentFiles(t, dir)
	require.Len(t, live, 1)
	for _, name := range []string{"9999.parquet", "10000.parquet.tmp"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, segmentsDir, "ls1", name), []byte("partial"), 0o644))
	}

	s, err = Open(Config{DataDir: dir, Threads: 2}, Settings{})
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, live, segmentFiles(t, dir))
	require.Equal(t, len(g.Logs), count(t, s, "* | select count(*)"))
}

// Segments written before a key's index type changed are read with the
// current type (NULL where a value does not convert), so old and new
// lines answer the same queries.
func TestIndexTypeChangeAcrossSegments(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	text := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{"status": {Type: index.TypeText}}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: text}))
	g := protocoltest.NginxLogGroup(4 << 10)
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()))
	n404 := countIn(g, "status", "404")
	require.Equal(t, n404, count(t, s, "status:404 | select count(*)"))

	long := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{"status": {Type: index.TypeLong}, "method": {Type: index.TypeText}}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: long}))
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()))
	require.Equal(t, 2*n404, count(t, s, "status:404 | select count(*)"))
	require.Equal(t, 2*n404, count(t, s, "* | select count(*) where status >= 404 and status < 405"))
	// method has a column only in the second segment.
	nGet := countIn(g, "method", "GET")
	require.Equal(t, nGet, count(t, s, "* | select count(*) where method = 'GET'"))
}

// Retention and dropping a logstore remove its segment files.
func TestRetentionAndDropRemoveSegmentFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := func() time.Time { return now }
	s, err := Open(Config{DataDir: dir, Threads: 2, Now: func() time.Time { return clock() }}, Settings{})
	require.NoError(t, err)
	ctx := context.Background()
	for _, l := range []string{"l", "other"} {
		require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: l, TTLDays: 3}))
	}
	g := protocoltest.NginxLogGroup(4 << 10)
	for i := range g.Logs {
		g.Logs[i].Time = uint32(now.Unix())
	}
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()))
	require.NoError(t, s.Write(ctx, "p", "other", []protocol.LogGroup{*g}, time.Now()))
	require.Equal(t, len(g.Logs), count(t, s, "* | select count(*)"))
	_, err = s.Search(ctx, "p", "other", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "*"})
	require.NoError(t, err)
	require.Len(t, segmentFiles(t, dir), 2)

	require.NoError(t, s.DropLogstore(ctx, "p", "other"))
	now = now.Add(5 * 24 * time.Hour)
	require.NoError(t, s.EnforceRetention(ctx))
	require.Equal(t, 0, count(t, s, "* | select count(*)"))
	require.NoError(t, s.Close())
	require.Empty(t, segmentFiles(t, dir))
}

// Field-indexed keys become Parquet column names as they are: dots,
// spaces, quotes and non-ASCII names are read back by DuckDB.
func TestOddKeyNamesAsColumns(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	keys := []string{"a.b", "x y", `q"uote`, "ключ", "n-1"}
	idx := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{}}
	for _, k := range keys {
		idx.Keys[k] = index.KeyConfig{Type: index.TypeText}
	}
	idx.Keys["n-1"] = index.KeyConfig{Type: index.TypeLong}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: idx}))
	l := protocol.Log{Time: uint32(time.Now().Unix())}
	for i, k := range keys {
		l.Contents = append(l.Contents, protocol.LogContent{Key: k, Value: strconv.Itoa(i + 1)})
	}
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{{Logs: []protocol.Log{l, l}}}, time.Now()))
	require.Equal(t, 2, count(t, s, `* | select count(*) where "a.b" = '1' and "x y" = '2' and "q""uote" = '3' and "ключ" = '4' and "n-1" = 5`))
	require.Equal(t, 2, count(t, s, `"ключ":4 | select count(*)`))
}

// When a log repeats a field-indexed key, its last value counts, also
// when that value does not parse as the column's type.
func TestRepeatedKeyLastValueCounts(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	idx := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{"status": {Type: index.TypeLong}}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: idx}))
	now := uint32(time.Now().Unix())
	logs := []protocol.Log{
		{Time: now, Contents: []protocol.LogContent{{Key: "status", Value: "200"}, {Key: "status", Value: "oops"}}},
		{Time: now, Contents: []protocol.LogContent{{Key: "status", Value: "oops"}, {Key: "status", Value: "500"}}},
	}
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{{Logs: logs}}, time.Now()))
	require.Equal(t, 1, count(t, s, "* | select count(*) where status is null"))
	require.Equal(t, 1, count(t, s, "* | select count(*) where status = 500"))
}
