// Package objstore keeps immutable files (the log store's Parquet
// segments) in an S3-compatible bucket, with a bounded local read cache:
// what several sluice-servers share instead of a data directory
// (sluice-server --storage s3://bucket/prefix).
//
//	b, err := objstore.Open(ctx, objstore.Config{URL: "s3://logs/sluice", Endpoint: "http://127.0.0.1:8333",
//		AccessKey: id, SecretKey: secret, CacheDir: dir, CacheBytes: 10 << 30}, objstore.Settings{...})
//	n, err := b.Put(ctx, "segments/ls1/7.parquet", "/tmp/x.parquet") // durable when it returns; now cached
//	paths, release, err := b.Fetch(ctx, keys)                        // local copies, in parallel
//	defer release()
//
// Objects are written once and never changed, so a cached copy never goes
// stale and needs no validation. The cache is a directory of whole files
// (CacheDir/<key>) with an LRU index in memory, rebuilt from the directory
// at Open: least recently used files are removed once the total passes
// CacheBytes, except files a caller still holds (Fetch pins them until
// release), so a query never loses a file it is reading; the cache can
// exceed its bound by what running queries hold. A file being downloaded
// is written under a temporary name and renamed when complete; concurrent
// fetches of one key share one download. ReadRange reads part of an
// object, from the cache when it holds the object, else with a ranged GET
// that is not cached (merged shard log objects, of which a read wants a
// small part).
//
// The client is minio-go (Apache-2.0, made for S3-compatible stores, small
// next to the AWS SDK); path-style addressing, so any S3-compatible server
// (SeaweedFS, MinIO, Ceph RGW, AWS S3) works by endpoint alone.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures the bucket and the cache.
type Config struct {
	// URL is s3://bucket/prefix (the prefix may be empty).
	URL string
	// Endpoint is the S3 server: http(s)://host:port, or host:port (https).
	// Empty: AWS S3 (s3.amazonaws.com).
	Endpoint string
	// Region (default us-east-1).
	Region string
	// AccessKey and SecretKey; both empty: from the environment
	// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), then IAM (instance role).
	AccessKey, SecretKey string
	// CacheDir is the local read cache; CacheBytes bounds it (default 10 GiB).
	CacheDir   string
	CacheBytes int64
	// Parallel bounds concurrent downloads of one Fetch (default 8).
	Parallel int
}

// Settings carries the logger and metrics registerer.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Bucket is an S3 bucket (under a prefix) with a local read cache. It is
// safe for concurrent use.
type Bucket struct {
	cfg    Config
	log    *slog.Logger
	client *minio.Client
	bucket string
	prefix string // "" or "a/b/"
	m      *metrics

	mu      sync.Mutex
	entries map[string]*entry
	lru     list // most recently used at the back
	size    int64
}

type entry struct {
	key        string
	size       int64
	pins       int
	ready      chan struct{} // closed when downloaded (or failed)
	err        error
	prev, next *entry
	inList     bool
}

// ParseURL splits s3://bucket/prefix.
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("%q is not an s3://bucket/prefix URL", s)
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return u.Host, prefix, nil
}

// Open connects to the bucket (which must exist) and loads the cache index.
func Open(ctx context.Context, cfg Config, set Settings) (*Bucket, error) {
	bucket, prefix, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("--storage: %w", err)
	}
	if cfg.CacheDir == "" {
		return nil, errors.New("object storage needs a local cache directory")
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 10 << 30
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	endpoint, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		e := cfg.Endpoint
		switch {
		case strings.HasPrefix(e, "http://"):
			endpoint, secure = strings.TrimPrefix(e, "http://"), false
		case strings.HasPrefix(e, "https://"):
			endpoint = strings.TrimPrefix(e, "https://")
		default:
			endpoint = e
		}
		endpoint = strings.TrimSuffix(endpoint, "/")
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.IAM{}})
	}
	client, err := minio.New(endpoint, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return nil, fmt.Errorf("object storage %s: %w", endpoint, err)
	}
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("object storage %s: bucket %q: %w (check --s3-endpoint and the credentials)", endpoint, bucket, err)
	}
	if !ok {
		return nil, fmt.Errorf("object storage %s: bucket %q does not exist: create it first", endpoint, bucket)
	}
	m, err := newMetrics(set.Registerer)
	if err != nil {
		return nil, err
	}
	b := &Bucket{cfg: cfg, log: set.Logger, client: client, bucket: bucket, prefix: prefix, m: m, entries: map[string]*entry{}}
	if err := b.loadCache(); err != nil {
		return nil, err
	}
	return b, nil
}

// CacheDir is the local directory cached files are in.
func (b *Bucket) CacheDir() string { return b.cfg.CacheDir }

// Client is the S3 client, for tests and tools.
func (b *Bucket) Client() *minio.Client { return b.client }

func (b *Bucket) localPath(key string) string {
	return filepath.Join(b.cfg.CacheDir, filepath.FromSlash(key))
}

// loadCache indexes the files already in the cache directory (oldest
// modification first in the LRU) and removes partial downloads.
func (b *Bucket) loadCache() error {
	if err := os.MkdirAll(b.cfg.CacheDir, 0o750); err != nil {
		return fmt.Errorf("object storage cache: %w", err)
	}
	type found struct {
		key  string
		size int64
		mod  time.Time
	}
	var files []found
	err := filepath.WalkDir(b.cfg.CacheDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".part") {
			return os.Remove(p)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(b.cfg.CacheDir, p)
		if err != nil {
			return err
		}
		files = append(files, found{filepath.ToSlash(rel), fi.Size(), fi.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("object storage cache %s: %w", b.cfg.CacheDir, err)
	}
	slices.SortFunc(files, func(x, y found) int { return x.mod.Compare(y.mod) })
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range files {
		e := &entry{key: f.key, size: f.size, ready: closedChan}
		b.entries[f.key] = e
		b.lru.pushBack(e)
		b.size += f.size
	}
	b.evictLocked()
	b.m.cacheBytes.Set(float64(b.size))
	return nil
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Put uploads the file at path as key, then moves it into the cache (the
// writer's own node reads new segments warm). The object is durable when
// Put returns. It returns the size.
func (b *Bucket) Put(ctx context.Context, key, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	t0 := time.Now()
	_, err = b.client.PutObject(ctx, b.bucket, b.prefix+key, f, fi.Size(), minio.PutObjectOptions{
		ContentType: "application/octet-stream", DisableMultipart: fi.Size() < 64<<20})
	f.Close()
	b.m.putSeconds.Observe(time.Since(t0).Seconds())
	if err != nil {
		b.m.errors.WithLabelValues("put").Inc()
		return 0, fmt.Errorf("upload %s: %w", key, err)
	}
	b.m.putBytes.Add(float64(fi.Size()))
	b.adopt(key, path, fi.Size())
	return fi.Size(), nil
}

// adopt moves a local file into the cache as key (best effort: the file
// is removed when it cannot be).
func (b *Bucket) adopt(key, path string, size int64) {
	dst := b.localPath(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err == nil && os.Rename(path, dst) == nil {
		b.mu.Lock()
		if _, ok := b.entries[key]; !ok {
			e := &entry{key: key, size: size, ready: closedChan}
			b.entries[key] = e
			b.lru.pushBack(e)
			b.size += size
			b.evictLocked()
			b.m.cacheBytes.Set(float64(b.size))
		}
		b.mu.Unlock()
		return
	}
	_ = os.Remove(path)
}

// Fetch makes local copies of keys (downloading up to Parallel at once)
// and returns their paths, pinned in the cache until release is called.
func (b *Bucket) Fetch(ctx context.Context, keys []string) (paths []string, release func(), err error) {
	ents := make([]*entry, len(keys))
	var todo []*entry
	b.mu.Lock()
	for i, k := range keys {
		e := b.entries[k]
		if e == nil {
			e = &entry{key: k, ready: make(chan struct{})}
			b.entries[k] = e
			todo = append(todo, e)
			b.m.misses.Inc()
		} else {
			b.m.hits.Inc()
			if e.inList {
				b.lru.remove(e)
				b.lru.pushBack(e)
			}
		}
		e.pins++
		ents[i] = e
	}
	b.mu.Unlock()
	release = func() {
		b.mu.Lock()
		for _, e := range ents {
			e.pins--
		}
		b.evictLocked()
		b.mu.Unlock()
	}
	if len(todo) > 0 {
		sem := make(chan struct{}, b.cfg.Parallel)
		var wg sync.WaitGroup
		for _, e := range todo {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				b.download(ctx, e)
			}()
		}
		wg.Wait()
	}
	paths = make([]string, len(keys))
	for i, e := range ents {
		select {
		case <-e.ready:
		case <-ctx.Done():
			release()
			return nil, nil, ctx.Err()
		}
		if e.err != nil {
			release()
			return nil, nil, e.err
		}
		paths[i] = b.localPath(e.key)
	}
	// Downloads finish in any order; mark the files used in the order they
	// were asked for, so which one is least recently used does not depend
	// on which download was faster.
	b.mu.Lock()
	for _, e := range ents {
		if e.inList {
			b.lru.remove(e)
			b.lru.pushBack(e)
		}
	}
	b.mu.Unlock()
	return paths, release, nil
}

// ReadRange returns n bytes of key from offset off: from the cached copy
// when the key is cached (or being fetched), else with one ranged GET
// whose bytes are not cached. It serves reads of a small part of an
// object (a shard log chunk, server/store/duckdb), where downloading and
// caching the whole object would fetch many times the bytes needed.
func (b *Bucket) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b.mu.Lock()
	e := b.entries[key]
	if e != nil {
		e.pins++
		if e.inList {
			b.lru.remove(e)
			b.lru.pushBack(e)
		}
	}
	b.mu.Unlock()
	if e != nil {
		data, err := b.readCached(ctx, e, off, n)
		b.mu.Lock()
		e.pins--
		b.evictLocked()
		b.mu.Unlock()
		if err == nil || ctx.Err() != nil {
			return data, err
		}
		// The download failed or the file is gone: ask the bucket.
	}
	b.m.rangeGets.Inc()
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+n-1); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", key, off, err)
	}
	t0 := time.Now()
	obj, err := b.client.GetObject(ctx, b.bucket, b.prefix+key, opts)
	if err != nil {
		b.m.errors.WithLabelValues("get").Inc()
		return nil, fmt.Errorf("read %s at %d: %w", key, off, err)
	}
	defer obj.Close()
	data := make([]byte, n)
	if _, err := io.ReadFull(obj, data); err != nil {
		b.m.errors.WithLabelValues("get").Inc()
		return nil, fmt.Errorf("read %s at %d: %w", key, off, err)
	}
	b.m.getSeconds.Observe(time.Since(t0).Seconds())
	b.m.getBytes.Add(float64(n))
	return data, nil
}

// readCached reads from e's cached file once its download is done.
func (b *Bucket) readCached(ctx context.Context, e *entry, off, n int64) ([]byte, error) {
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if e.err != nil {
		return nil, e.err
	}
	f, err := os.Open(b.localPath(e.key))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data := make([]byte, n)
	if _, err := f.ReadAt(data, off); err != nil {
		return nil, fmt.Errorf("read cached %s at %d: %w", e.key, off, err)
	}
	b.m.hits.Inc()
	return data, nil
}

// download fills e; on failure the entry is dropped so a later Fetch
// tries again.
func (b *Bucket) download(ctx context.Context, e *entry) {
	t0 := time.Now()
	size, err := b.get(ctx, e.key)
	b.m.getSeconds.Observe(time.Since(t0).Seconds())
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.m.errors.WithLabelValues("get").Inc()
		e.err = fmt.Errorf("download %s: %w", e.key, err)
		delete(b.entries, e.key)
	} else {
		e.size = size
		b.lru.pushBack(e)
		b.size += size
		b.m.getBytes.Add(float64(size))
		b.m.cacheBytes.Set(float64(b.size))
	}
	close(e.ready)
}

func (b *Bucket) get(ctx context.Context, key string) (int64, error) {
	obj, err := b.client.GetObject(ctx, b.bucket, b.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	dst := b.localPath(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".*.part")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, obj)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return 0, err
	}
	return n, nil
}

// evictLocked removes least recently used, unpinned files until the cache
// fits its bound.
func (b *Bucket) evictLocked() {
	for e := b.lru.head; e != nil && b.size > b.cfg.CacheBytes; {
		next := e.next
		if e.pins == 0 {
			b.lru.remove(e)
			delete(b.entries, e.key)
			b.size -= e.size
			if err := os.Remove(b.localPath(e.key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				b.log.Warn("removing a cached file failed", "key", e.key, "err", err)
			}
			b.m.evictions.Inc()
		}
		e = next
	}
	b.m.cacheBytes.Set(float64(b.size))
}

// Delete removes the object and its cached copy. Callers delete only
// what no query can still use (the store's graves), so no pinned copy is
// expected; a reader with the file open keeps reading it anyway.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := b.client.RemoveObject(ctx, b.bucket, b.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		b.m.errors.WithLabelValues("delete").Inc()
		return fmt.Errorf("delete %s: %w", key, err)
	}
	b.mu.Lock()
	if e := b.entries[key]; e != nil && e.inList {
		b.lru.remove(e)
		delete(b.entries, key)
		b.size -= e.size
		_ = os.Remove(b.localPath(key))
		b.m.cacheBytes.Set(float64(b.size))
	}
	b.mu.Unlock()
	return nil
}

// List calls fn for every object whose key starts with prefix, with its
// key (without the bucket's prefix) and modification time.
func (b *Bucket) List(ctx context.Context, prefix string, fn func(key string, modified time.Time) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range b.client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("list %s: %w", prefix, o.Err)
		}
		if err := fn(strings.TrimPrefix(o.Key, b.prefix), o.LastModified); err != nil {
			return err
		}
	}
	return nil
}

// CacheSize is the bytes of cached files.
func (b *Bucket) CacheSize() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size
}

// list is an intrusive doubly linked list of entries.
type list struct{ head, tail *entry }

func (l *list) pushBack(e *entry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
	e.inList = true
}

func (l *list) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next, e.inList = nil, nil, false
}

type metrics struct {
	hits, misses, evictions prometheus.Counter
	rangeGets               prometheus.Counter
	cacheBytes              prometheus.Gauge
	getBytes, putBytes      prometheus.Counter
	getSeconds, putSeconds  prometheus.Histogram
	errors                  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := prometheus.ExponentialBuckets(0.001, 2, 16)
	m := &metrics{
		hits:       prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_objstore_cache_hits_total", Help: "Files a query found in the local cache."}),
		misses:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_objstore_cache_misses_total", Help: "Files a query had to download from object storage."}),
		evictions:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_objstore_cache_evictions_total", Help: "Cached files removed to keep the cache within its size."}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_objstore_cache_bytes", Help: "Bytes of files in the local cache."}),
		rangeGets:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_objstore_range_gets_total", Help: "Parts of objects read with a ranged GET, not cached (shard log chunks of objects not in the cache)."}),
		getBytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_objstore_get_bytes_total", Help: "Bytes downloaded from object storage."}),
		putBytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_objstore_put_bytes_total", Help: "Bytes uploaded to object storage."}),
		getSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_objstore_get_seconds", Help: "Time of one object download.", Buckets: buckets}),
		putSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_objstore_put_seconds", Help: "Time of one object upload.", Buckets: buckets}),
		errors:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_objstore_errors_total", Help: "Failed object storage requests, by operation."}, []string{"op"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.hits, m.misses, m.evictions, m.rangeGets, m.cacheBytes, m.getBytes, m.putBytes, m.getSeconds, m.putSeconds, m.errors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("object storage metrics: %w", err)
			}
		}
	}
	return m, nil
}
