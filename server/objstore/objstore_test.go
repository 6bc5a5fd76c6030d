package objstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/s3test"
	"github.com/sluicelog/sluice/server/objstore"
)

func TestMain(m *testing.M) { s3test.Main(m) }

func open(t *testing.T, b s3test.Bucket, cacheDir string, cacheBytes int64) *objstore.Bucket {
	t.Helper()
	o, err := objstore.Open(context.Background(), objstore.Config{URL: b.URL, Endpoint: b.Endpoint,
		AccessKey: b.AccessKey, SecretKey: b.SecretKey, CacheDir: cacheDir, CacheBytes: cacheBytes}, objstore.Settings{})
	require.NoError(t, err)
	return o
}

func file(t *testing.T, dir string, size int, fill byte) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("f-%d-%d", size, fill))
	require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte{fill}, size), 0o640))
	return p
}

// A file put on one node is fetched by another (a cold cache), byte for
// byte; the putting node has it cached already.
func TestPutFetchAcrossNodes(t *testing.T) {
	ctx := context.Background()
	b := s3test.NewBucket(t)
	a := open(t, b, t.TempDir(), 1<<20)
	other := open(t, b, t.TempDir(), 1<<20)
	src := t.TempDir()
	n, err := a.Put(ctx, "segments/ls1/1.parquet", file(t, src, 1000, 'x'))
	require.NoError(t, err)
	require.EqualValues(t, 1000, n)
	require.EqualValues(t, 1000, a.CacheSize(), "the writer keeps its new file cached")

	paths, release, err := other.Fetch(ctx, []string{"segments/ls1/1.parquet"})
	require.NoError(t, err)
	defer release()
	got, err := os.ReadFile(paths[0])
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte{'x'}, 1000), got)
	require.True(t, filepath.IsAbs(paths[0]))
	require.Contains(t, paths[0], other.CacheDir())

	_, _, err = other.Fetch(ctx, []string{"segments/ls1/missing.parquet"})
	require.Error(t, err, "a missing object is an error")
	var keys []string
	require.NoError(t, a.List(ctx, "segments/", func(key string, mod time.Time) error {
		keys = append(keys, key)
		require.WithinDuration(t, time.Now(), mod, time.Hour)
		return nil
	}))
	require.Equal(t, []string{"segments/ls1/1.parquet"}, keys, "keys are listed without the prefix")

	require.NoError(t, a.Delete(ctx, "segments/ls1/1.parquet"))
	require.Zero(t, a.CacheSize())
	keys = nil
	require.NoError(t, a.List(ctx, "", func(key string, _ time.Time) error { keys = append(keys, key); return nil }))
	require.Empty(t, keys)
}

// The cache stays within its bound by dropping least recently used files,
// never one a caller still holds, and is rebuilt from its directory.
func TestCacheBoundAndPins(t *testing.T) {
	ctx := context.Background()
	b := s3test.NewBucket(t)
	writer := open(t, b, t.TempDir(), 1<<30)
	src := t.TempDir()
	for i := range 5 {
		_, err := writer.Put(ctx, fmt.Sprintf("k%d", i), file(t, src, 400, byte('a'+i)))
		require.NoError(t, err)
	}
	dir := t.TempDir()
	c := open(t, b, dir, 1000) // room for two files

	p01, rel01, err := c.Fetch(ctx, []string{"k0", "k1"})
	require.NoError(t, err)
	// Held: fetching more goes over the bound rather than drop them.
	p2, rel2, err := c.Fetch(ctx, []string{"k2"})
	require.NoError(t, err)
	require.EqualValues(t, 1200, c.CacheSize())
	for _, p := range append(p01, p2...) {
		require.FileExists(t, p)
	}
	rel01()
	require.LessOrEqual(t, c.CacheSize(), int64(1000), "released files are evicted down to the bound")
	require.FileExists(t, p2[0], "a held file stays")
	require.NoFileExists(t, p01[0], "the least recently used goes first")
	rel2()

	_, rel, err := c.Fetch(ctx, []string{"k3", "k4"})
	require.NoError(t, err)
	rel()
	require.LessOrEqual(t, c.CacheSize(), int64(1000))

	again := open(t, b, dir, 1000)
	require.Equal(t, c.CacheSize(), again.CacheSize(), "the index is rebuilt from the directory")
	paths, rel, err := again.Fetch(ctx, []string{"k4"})
	require.NoError(t, err)
	got, err := os.ReadFile(paths[0])
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte{'e'}, 400), got)
	rel()
}

// ReadRange reads a part of an object: from the cached copy on the node
// that has one, else with a ranged GET that caches nothing.
func TestReadRange(t *testing.T) {
	ctx := context.Background()
	b := s3test.NewBucket(t)
	a := open(t, b, t.TempDir(), 1<<20)
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	src := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(src, data, 0o640))
	_, err := a.Put(ctx, "shardlog/ls1/1.groups", src)
	require.NoError(t, err)

	other := open(t, b, t.TempDir(), 1<<20)
	for _, n := range []*objstore.Bucket{a, other} {
		got, err := n.ReadRange(ctx, "shardlog/ls1/1.groups", 100, 50)
		require.NoError(t, err)
		require.Equal(t, data[100:150], got)
		got, err = n.ReadRange(ctx, "shardlog/ls1/1.groups", 990, 10)
		require.NoError(t, err)
		require.Equal(t, data[990:], got)
		_, err = n.ReadRange(ctx, "shardlog/ls1/1.groups", 990, 20)
		require.Error(t, err, "past the end")
	}
	require.Zero(t, other.CacheSize(), "a ranged read caches nothing")
	require.NoError(t, a.Delete(ctx, "shardlog/ls1/1.groups"))
	_, err = other.ReadRange(ctx, "shardlog/ls1/1.groups", 0, 10)
	require.Error(t, err, "a deleted object")
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	b := s3test.NewBucket(t)
	_, err := objstore.Open(ctx, objstore.Config{URL: "s3://no-such-bucket-x/p", Endpoint: b.Endpoint,
		AccessKey: b.AccessKey, SecretKey: b.SecretKey, CacheDir: t.TempDir()}, objstore.Settings{})
	require.ErrorContains(t, err, "does not exist")
	_, err = objstore.Open(ctx, objstore.Config{URL: "http://x/y", CacheDir: t.TempDir()}, objstore.Settings{})
	require.ErrorContains(t, err, "s3://bucket/prefix")
	_, err = objstore.Open(ctx, objstore.Config{URL: b.URL, Endpoint: b.Endpoint,
		AccessKey: b.AccessKey, SecretKey: "wrong", CacheDir: t.TempDir()}, objstore.Settings{})
	require.Error(t, err, "wrong credentials are refused")
}
