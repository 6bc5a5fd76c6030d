package duckdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
)

// Shared makes the store one node of several that share their segments
// in object storage and their catalog in a database (see "Several nodes"
// in the package documentation). Each node still has its own DataDir for
// DuckDB's files and uploads in progress.
type Shared struct {
	// Catalog is the logstore and segment catalog every node shares
	// (server/store/duckdb/pgcatalog on PostgreSQL).
	Catalog Catalog
	// Objects holds the segment files (server/objstore: an S3 bucket with
	// a local read cache).
	Objects Objects
	// Node names this node in leases and logs (default: host name and pid).
	Node string
	// CommitInterval is the group commit: writes arriving within it are
	// written as one segment per logstore and day, uploaded and recorded
	// together, then acknowledged (default 200ms; sooner once LoadRows
	// rows wait).
	CommitInterval time.Duration
	// MaintenanceInterval is how often a node tries to take the
	// maintenance lease and, holding it, compacts, expires and removes
	// replaced objects (default 5s).
	MaintenanceInterval time.Duration
	// GraveDelay is added to twice the longest QueryTimeout of the nodes
	// before the object of a replaced or expired segment is deleted
	// (default 1m; room for a query that listed the segment just before).
	GraveDelay time.Duration
	// ShardMergeAge: shard log objects (one per logstore per commit) are
	// merged into one per logstore and time window of this length (by
	// receive time) once the window has been over for this long, so they
	// are merged between one and two ShardMergeAge after their writes
	// (default 10m).
	ShardMergeAge time.Duration
	// OrphanAge: an object no catalog row names and older than this is
	// the leftover of an upload whose node died before recording it, and
	// is removed (default 1h).
	OrphanAge time.Duration
	// ResendWindow: a group sent again with the same __pack_id__ and the
	// same content within this long of its commit is acknowledged without
	// being stored again (see "Sent twice" in the package documentation;
	// default 1h, negative: off, every write is stored).
	ResendWindow time.Duration
}

// PackKey identifies a group its client may send again: a client that
// got no answer re-sends the same group with the same __pack_id__ tag.
// Digest (of the group's encoding) tells a re-send from a different group
// under a reused id, which must be stored.
type PackKey struct {
	Logstore int64
	ID       string
	Digest   int64
}

// Objects is the object storage segments live in, with a local cache
// DuckDB reads them from. Keys are slash-separated paths
// ("segments/ls3/17.parquet"); the cached copy of key is CacheDir()/key.
type Objects interface {
	// Put uploads the local file at path as key and moves it into the
	// cache; the object is durable when Put returns.
	Put(ctx context.Context, key, path string) (int64, error)
	// Fetch makes local copies of keys in the cache, kept until release.
	Fetch(ctx context.Context, keys []string) (paths []string, release func(), err error)
	// ReadRange returns n bytes of key from off, from the cache when it
	// holds key, else from object storage without caching them.
	ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// Delete removes an object (and its cached copy).
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix.
	List(ctx context.Context, prefix string, fn func(key string, modified time.Time) error) error
	CacheDir() string
}

// LogstoreRecord is a logstore's catalog row.
type LogstoreRecord struct {
	ID                int64
	Project, Logstore string
	TTLDays           int
	Index             string // JSON of *index.Config
	Columns           string // JSON of the typed columns new segments get
}

// SegmentRecord is a segment's catalog row. Key() names its object.
type SegmentRecord struct {
	ID, Logstore     int64
	Day              int32 // UTC day of its logs' __time__ (unix days)
	Rows, Bytes      int64
	MinTime, MaxTime int64  // __time__ range, inclusive
	Fields           string // JSON of the typed columns in the file
	// Stats is JSON of the segment's statistics, which queries test to
	// skip it without fetching it (stats.go); "" = none, always read.
	Stats string
}

// Key is the segment's object key.
func (r SegmentRecord) Key() string { return segmentKey(r.Logstore, r.ID) }

func segmentKey(lsID, id int64) string {
	return path.Join(segmentsDir, "ls"+strconv.FormatInt(lsID, 10), strconv.FormatInt(id, 10)+".parquet")
}

// ShardChunk is the groups one group commit wrote to one shard: Groups
// consecutive cursors from First, stored as LogGroupList entries at
// [Off, Off+Len) of the commit's shard object (ShardObjectKey). Once
// merged (shardmerge.go), one chunk may hold a run of commits' chunks of
// its shard: Received is then the latest of theirs.
type ShardChunk struct {
	Logstore int64
	Shard    int
	First    int64 // set by Catalog.AddSegments
	Groups   int
	Received int64 // unix ns, the latest of its writes
	Object   int64 // id of the object (from NewSegmentIDs)
	Off, Len int64
	// Merged (set by Catalog.ShardChunks and ShardSeek): Object is a
	// merge of many commits' objects (shardmerge.go), read by byte range,
	// not whole, and the chunk's bytes are framed commit by commit
	// (chunkPieces).
	Merged bool
}

// ShardObjectKey names the object holding a commit's shard chunks of one
// logstore.
func ShardObjectKey(lsID, id int64) string {
	return path.Join(shardObjectsDir, "ls"+strconv.FormatInt(lsID, 10), strconv.FormatInt(id, 10)+".groups")
}

// shardObjectsDir is the object key prefix of shard chunks.
const shardObjectsDir = "shardlog"

// Hold is how long the object of a segment removed from the catalog must
// be kept: a query on any node lists its segments when it starts and runs
// for at most that node's QueryTimeout, so the object may be deleted
// Delay plus twice the longest QueryTimeout of the nodes (this one's and
// those registered with Catalog.RegisterNode) after the removal.
type Hold struct {
	QueryTimeout time.Duration // the removing node's
	Delay        time.Duration
}

// NodeRecord is what a node registers in the catalog (RegisterNode).
type NodeRecord struct {
	Name         string // one run of a node (renewals use the same)
	QueryTimeout time.Duration
	// TTL is how long the registration counts without being renewed.
	TTL time.Duration
}

// ErrConflict is returned by Catalog.ReplaceSegments when a segment to
// replace is gone (another node replaced or expired it meanwhile).
var ErrConflict = errors.New("catalog changed meanwhile")

// Catalog is the durable list of logstores and segments several nodes
// share. A segment is visible to queries once AddSegments (or
// ReplaceSegments) has committed its row; objects of removed segments are
// recorded as graves, due for deletion once no query can still read them.
type Catalog interface {
	Logstores(ctx context.Context) ([]LogstoreRecord, error)
	// PutLogstore creates or updates the logstore by project and name
	// and returns its id.
	PutLogstore(ctx context.Context, r LogstoreRecord) (int64, error)
	// DropLogstore removes the logstore and its segments, burying their
	// objects for hold.
	DropLogstore(ctx context.Context, id int64, hold Hold) error
	// NewSegmentIDs allocates n segment ids no node has used.
	NewSegmentIDs(ctx context.Context, n int) ([]int64, error)
	// AddSegments records segments, shard chunks and the pack keys of
	// their groups in one transaction, giving each chunk its shard's next
	// cursors (ShardChunk.First, set in chunks) in commit order; it fails
	// with store.ErrLogstoreNotFound when a logstore is gone, and with
	// ErrConflict when a pack key is recorded already (committed meanwhile
	// by another node).
	AddSegments(ctx context.Context, segs []SegmentRecord, chunks []ShardChunk, packs []PackKey) error
	// CommittedPacks returns which of keys are recorded.
	CommittedPacks(ctx context.Context, keys []PackKey) (map[PackKey]bool, error)
	// ForgetPacks removes up to max pack keys recorded longer than age
	// ago and returns how many.
	ForgetPacks(ctx context.Context, age time.Duration, max int) (int, error)
	// ShardChunks returns the shard's cursor bounds (begin: the first
	// retained group; end: after the last) and up to max chunks in cursor
	// order from the one holding cursor from (none when from is outside
	// [begin, end)). A shard never written has 0, 0.
	ShardChunks(ctx context.Context, lsID int64, shard int, from int64, max int) (begin, end int64, chunks []ShardChunk, err error)
	// ShardSeek returns the first chunk (in cursor order) received at or
	// after t (unix ns); when there is none, a chunk of no groups whose
	// First is the shard's end.
	ShardSeek(ctx context.Context, lsID int64, shard int, t int64) (ShardChunk, error)
	// ShardMergeCandidates returns every chunk of up to maxObjects shard
	// objects of one logstore whose chunks are not merged yet and were
	// received in the oldest window [w×window, (w+1)×window) (unix ns)
	// holding such a chunk received before cutoff, ordered by object and
	// offset; none when nothing is due.
	ShardMergeCandidates(ctx context.Context, window, cutoff int64, maxObjects int) ([]ShardChunk, error)
	// ReplaceShardObjects replaces the chunks of the logstore's objects
	// old, which must be exactly in (by Shard and First; else
	// ErrConflict), by the merged chunks out (covering the same cursors),
	// in one transaction, burying the objects of old no chunk names any
	// more for hold.
	ReplaceShardObjects(ctx context.Context, lsID int64, old []int64, in, out []ShardChunk, hold Hold) error
	// ExpireShards removes the logstore's chunks received before cutoff
	// (unix ns), burying objects no chunk names any more, and returns
	// how many chunks.
	ExpireShards(ctx context.Context, lsID int64, cutoff int64, hold Hold) (int, error)
	// Segments lists the logstore's segments of days [firstDay, lastDay]
	// whose time range meets [from, to).
	Segments(ctx context.Context, lsID int64, firstDay, lastDay int32, from, to int64) ([]SegmentRecord, error)
	// SmallSegments returns up to max segments smaller than below rows of
	// one logstore, day and column set that has at least min of them, or
	// none.
	SmallSegments(ctx context.Context, below int64, min, max int) ([]SegmentRecord, error)
	// ReplaceSegments swaps old (all of them still present, else
	// ErrConflict) for seg in one transaction, burying old's objects.
	ReplaceSegments(ctx context.Context, old []int64, seg SegmentRecord, hold Hold) error
	// ExpireDays removes the logstore's segments of days before day,
	// burying their objects, and returns how many.
	ExpireDays(ctx context.Context, lsID int64, day int32, hold Hold) (int, error)
	// DueGraves returns up to max buried object keys due by now;
	// ForgetGraves removes them once the objects are deleted.
	DueGraves(ctx context.Context, max int) ([]string, error)
	ForgetGraves(ctx context.Context, keys []string) error
	// Known returns which of the segment ids have a catalog row or a
	// grave (for removing objects of uploads that were never recorded).
	Known(ctx context.Context, ids []int64) (map[int64]bool, error)
	// RegisterNode records (or renews) a node and its QueryTimeout, which
	// then counts in every Hold until the registration's TTL runs out. A
	// node registers before it serves its first query.
	RegisterNode(ctx context.Context, n NodeRecord) error
	// TryLease takes or renews the named lease for holder for ttl; it
	// reports whether holder has it.
	TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
}

func (c *Shared) withDefaults() *Shared {
	out := *c
	if out.CommitInterval <= 0 {
		out.CommitInterval = 200 * time.Millisecond
	}
	if out.MaintenanceInterval <= 0 {
		out.MaintenanceInterval = 5 * time.Second
	}
	if out.GraveDelay <= 0 {
		out.GraveDelay = time.Minute
	}
	if out.ShardMergeAge <= 0 {
		out.ShardMergeAge = 10 * time.Minute
	}
	if out.OrphanAge <= 0 {
		out.OrphanAge = time.Hour
	}
	if out.ResendWindow == 0 {
		out.ResendWindow = time.Hour
	}
	if out.Node == "" {
		h, _ := os.Hostname()
		out.Node = h + "-" + strconv.Itoa(os.Getpid())
	}
	return &out
}

// uploadDir holds segment files being written before their upload (and
// merges); DuckDB may write there. Emptied at Open.
const uploadDir = "upload"

// openShared loads the logstores from the shared catalog and starts the
// node's background work. The local DuckDB database only runs queries.
func (s *Store) openShared(ctx context.Context) error {
	up := filepath.Join(s.cfg.DataDir, uploadDir)
	if err := os.RemoveAll(up); err != nil {
		return fmt.Errorf("duckdb store: clean %s: %w", up, err)
	}
	if err := os.MkdirAll(up, 0o750); err != nil {
		return fmt.Errorf("duckdb store: %w", err)
	}
	if err := s.refreshLogstores(ctx); err != nil {
		return err
	}
	s.instance = s.sh.Node + "#" + strconv.FormatUint(rand.Uint64(), 36)
	if err := s.sh.Catalog.RegisterNode(ctx, s.nodeRecord()); err != nil {
		return fmt.Errorf("duckdb store: register node %s in the catalog: %w", s.sh.Node, err)
	}
	s.wg.Add(1)
	go s.maintainer()
	return nil
}

// sharedDirs are the directories DuckDB may read (and, for merges, write)
// in shared mode.
func (s *Store) sharedDirs() []string {
	return []string{
		filepath.Clean(s.sh.Objects.CacheDir()) + string(filepath.Separator),
		filepath.Join(s.cfg.DataDir, uploadDir) + string(filepath.Separator),
	}
}

// refreshLogstores makes the in-memory logstores match the catalog: other
// nodes create, change and drop them. A logstore whose id is unchanged is
// updated in place (queued writes keep their *logstore).
func (s *Store) refreshLogstores(ctx context.Context) error {
	recs, err := s.sh.Catalog.Logstores(ctx)
	if err != nil {
		return fmt.Errorf("duckdb store: read catalog: %w", err)
	}
	type built struct {
		rec    LogstoreRecord
		schema *schema
	}
	fresh := make(map[lsKey]built, len(recs))
	s.mu.RLock()
	for _, r := range recs {
		k := lsKey{r.Project, r.Logstore}
		if cur := s.logstores[k]; cur != nil && cur.id == r.ID && cur.catIndex == r.Index && cur.catColumns == r.Columns {
			fresh[k] = built{rec: r}
			continue
		}
		sch, err := schemaOf(r)
		if err != nil {
			s.mu.RUnlock()
			return err
		}
		fresh[k] = built{r, sch}
	}
	s.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ls := range s.logstores {
		if b, ok := fresh[k]; !ok || b.rec.ID != ls.id {
			delete(s.logstores, k)
		}
	}
	for k, b := range fresh {
		ls := s.logstores[k]
		if ls == nil {
			ls = &logstore{id: b.rec.ID, key: k, days: map[int32]bool{}, segs: map[int32][]*segment{}}
			s.logstores[k] = ls
		}
		ls.ttlDays = b.rec.TTLDays
		if b.schema != nil {
			ls.schema, ls.catIndex, ls.catColumns = b.schema, b.rec.Index, b.rec.Columns
		}
	}
	return nil
}

func schemaOf(r LogstoreRecord) (*schema, error) {
	var idx *index.Config
	var fields []fieldColumn
	if err := json.Unmarshal([]byte(r.Index), &idx); err != nil {
		return nil, fmt.Errorf("duckdb store: catalog index of %s/%s: %w", r.Project, r.Logstore, err)
	}
	if err := json.Unmarshal([]byte(r.Columns), &fields); err != nil {
		return nil, fmt.Errorf("duckdb store: catalog columns of %s/%s: %w", r.Project, r.Logstore, err)
	}
	return newSchema(idx, fields), nil
}

// lookupShared finds a logstore another node may have created since the
// last refresh.
func (s *Store) lookupShared(ctx context.Context, key lsKey) *logstore {
	if err := s.refreshLogstores(ctx); err != nil {
		s.log.Warn("refreshing logstores from the catalog failed", "err", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.logstores[key]
}

func (s *Store) ensureShared(ctx context.Context, spec store.LogstoreSpec, idxJSON []byte) error {
	key := lsKey{spec.Project, spec.Logstore}
	s.mu.RLock()
	ls := s.logstores[key]
	s.mu.RUnlock()
	var current []fieldColumn
	if ls != nil {
		current = ls.schema.fields
	}
	colJSON, err := json.Marshal(desiredFields(current, spec.Index))
	if err != nil {
		return fmt.Errorf("duckdb store: encode columns: %w", err)
	}
	_, err = s.sh.Catalog.PutLogstore(ctx, LogstoreRecord{Project: spec.Project, Logstore: spec.Logstore, TTLDays: spec.TTLDays,
		Index: string(idxJSON), Columns: string(colJSON)})
	if err != nil {
		return fmt.Errorf("duckdb store: create logstore %s/%s: %w", spec.Project, spec.Logstore, err)
	}
	return s.refreshLogstores(ctx)
}

func (s *Store) dropShared(ctx context.Context, project, logstore string) error {
	ls := s.lookupShared(ctx, lsKey{project, logstore})
	if ls == nil {
		return fmt.Errorf("duckdb store: drop %s/%s: %w", project, logstore, store.ErrLogstoreNotFound)
	}
	if err := s.sh.Catalog.DropLogstore(ctx, ls.id, s.hold()); err != nil {
		return fmt.Errorf("duckdb store: drop %s/%s: %w", project, logstore, err)
	}
	return s.refreshLogstores(ctx)
}

// hold is how long objects this node removes from the catalog are kept.
// The catalog makes it twice the longest QueryTimeout of any registered
// node, so nodes may run with different --query-timeout.
func (s *Store) hold() Hold {
	return Hold{QueryTimeout: s.cfg.QueryTimeout, Delay: s.sh.GraveDelay}
}

// nodeRecord is this run's registration: renewed every maintenance
// interval, counted for an hour (or three intervals) after the last; a
// restarted node registers anew, and its old run's registration runs out.
func (s *Store) nodeRecord() NodeRecord {
	return NodeRecord{Name: s.instance, QueryTimeout: s.cfg.QueryTimeout, TTL: max(time.Hour, 3*s.sh.MaintenanceInterval)}
}

// commitShared is the group commit: the writes' rows become one segment
// per logstore, day and schema, uploaded in parallel and recorded in one
// catalog transaction. Only then are the writes acknowledged (by the
// caller, with the returned error). Objects of a commit that fails are
// removed (best effort; the orphan sweep removes what is left).
func (s *Store) commitShared(ctx context.Context, reqs []*writeReq, packs []PackKey) error {
	t0 := time.Now()
	type fileKey struct {
		ls  *logstore
		day int32
		sch *schema
	}
	byFile := map[fileKey][]*part{}
	var order []fileKey
	for _, r := range reqs {
		for i := range r.parts {
			p := &r.parts[i]
			k := fileKey{p.ls, p.day, p.schema}
			if _, ok := byFile[k]; !ok {
				order = append(order, k)
			}
			byFile[k] = append(byFile[k], p)
		}
	}
	objs := shardObjectsOf(reqs)
	if len(order) == 0 && len(objs) == 0 {
		return nil
	}
	ids, err := s.sh.Catalog.NewSegmentIDs(ctx, len(order)+len(objs))
	if err != nil {
		return s.unavailable(err)
	}
	recs := make([]SegmentRecord, len(order))
	errs := make([]error, len(order)+len(objs))
	var wg sync.WaitGroup
	for i, o := range objs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[len(order)+i] = s.putShardObject(ctx, o, ids[len(order)+i])
		}()
	}
	for i, k := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmp := filepath.Join(s.cfg.DataDir, uploadDir, strconv.FormatInt(ids[i], 10)+".parquet")
			// The statistics are gathered while the file is written and
			// uploaded (the parts are only read meanwhile).
			stats := make(chan string, 1)
			go func() { stats <- segmentStats(k.sch, byFile[k]) }()
			sg, err := writeSegment(tmp, k.sch, byFile[k])
			if err != nil {
				<-stats
				_ = os.Remove(tmp)
				errs[i] = fmt.Errorf("write segment: %w", err)
				return
			}
			rec := SegmentRecord{ID: ids[i], Logstore: k.ls.id, Day: k.day, Rows: sg.rows, MinTime: sg.minTime, MaxTime: sg.maxTime, Fields: fieldsKey(k.sch.fields)}
			rec.Bytes, err = s.sh.Objects.Put(ctx, rec.Key(), tmp)
			rec.Stats = <-stats
			if err != nil {
				_ = os.Remove(tmp)
				errs[i] = err
				return
			}
			recs[i] = rec
		}()
	}
	wg.Wait()
	var chunks []ShardChunk
	for _, o := range objs {
		chunks = append(chunks, o.chunks...)
	}
	if err := errors.Join(errs...); err != nil {
		s.forget(recs, objs)
		return s.unavailable(err)
	}
	if err := s.sh.Catalog.AddSegments(ctx, recs, chunks, packs); err != nil {
		s.forget(recs, objs)
		if errors.Is(err, store.ErrLogstoreNotFound) {
			// Dropped on another node: learn it now, so later writes fail
			// at once (or go to a logstore made anew under that name).
			if rerr := s.refreshLogstores(ctx); rerr != nil {
				s.log.Warn("refreshing logstores from the catalog failed", "err", rerr)
			}
			return fmt.Errorf("duckdb store: %w", err)
		}
		return s.unavailable(err)
	}
	var nrows, nbytes int64
	for i, r := range recs {
		nrows += r.Rows
		for _, p := range byFile[order[i]] {
			nbytes += int64(len(p.cols[colContents].data))
		}
	}
	s.m.commits.Inc()
	s.m.segmentsWritten.Add(float64(len(recs)))
	s.m.rowsWritten.Add(float64(nrows))
	s.m.bytesWritten.Add(float64(nbytes))
	s.m.groupCommitSeconds.Observe(time.Since(t0).Seconds())
	return nil
}

// unavailable wraps a failure of object storage or the catalog as a
// retryable error (503): nothing was acknowledged.
func (s *Store) unavailable(err error) error {
	s.m.commitFailures.Inc()
	s.log.Warn("group commit failed; the writes are refused and will be retried by their clients", "err", err)
	return fmt.Errorf("duckdb store: shared storage unavailable: %w: %w", store.ErrOverloaded, err)
}

// forget deletes the objects of records that were not committed.
func (s *Store) forget(recs []SegmentRecord, objs []*shardObject) {
	var keys []string
	for _, r := range recs {
		if r.ID != 0 {
			keys = append(keys, r.Key())
		}
	}
	for _, o := range objs {
		if o.key != "" {
			keys = append(keys, o.key)
		}
	}
	s.forgetKeys(keys)
}

// forgetKeys deletes objects that were uploaded but not recorded.
func (s *Store) forgetKeys(keys []string) {
	for _, k := range keys {
		if err := s.sh.Objects.Delete(context.Background(), k); err != nil {
			s.log.Warn("removing the object of a failed commit failed; the orphan sweep removes it later", "key", k, "err", err)
		}
	}
}

// loadShared runs the group commit for reqs and acknowledges them. Writes
// whose every group was committed before (sent again by a client that got
// no answer) are acknowledged with the commit but not stored again.
func (s *Store) loadShared(ctx context.Context, reqs []*writeReq) {
	live := reqs[:0:0]
	for _, r := range reqs {
		if err := s.checkLive(r); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	fresh, resent, packs, err := s.sortResent(ctx, live)
	if err != nil {
		err = s.unavailable(fmt.Errorf("look up re-sent groups: %w", err))
	} else {
		err = s.commitShared(ctx, fresh, packs)
	}
	if err == nil && len(resent) > 0 {
		groups, logs := 0, 0
		for _, r := range resent {
			groups += r.ngroups
			logs += r.nrows
		}
		s.m.resentGroups.Add(float64(groups))
		s.log.Info("acknowledged groups sent again after their commit without storing them twice", "groups", groups, "logs", logs)
	}
	for _, r := range live {
		r.done <- err
	}
}

// sortResent splits reqs into the writes to commit and those whose every
// group is recorded in the catalog by its pack key or is in an earlier
// write of the batch (resent), and returns the pack keys the commit
// records. A write with
// one new group is committed whole: a client that regroups what it sends
// again gets those groups stored twice (at least once), never lost.
func (s *Store) sortResent(ctx context.Context, reqs []*writeReq) (fresh, resent []*writeReq, packs []PackKey, err error) {
	if s.sh.ResendWindow < 0 {
		return reqs, nil, nil, nil
	}
	var keys []PackKey
	for _, r := range reqs {
		keys = append(keys, r.packs...)
	}
	if len(keys) == 0 {
		return reqs, nil, nil, nil
	}
	known, err := s.sh.Catalog.CommittedPacks(ctx, keys)
	if err != nil {
		return nil, nil, nil, err
	}
	claimed := make(map[PackKey]bool, len(keys))
	for _, r := range reqs {
		again := len(r.packs) == r.ngroups
		for _, k := range r.packs {
			again = again && (known[k] || claimed[k])
		}
		if again {
			resent = append(resent, r)
			continue
		}
		fresh = append(fresh, r)
		for _, k := range r.packs {
			if !known[k] && !claimed[k] {
				claimed[k] = true
				packs = append(packs, k)
			}
		}
	}
	return fresh, resent, packs, nil
}

// sharedViewOf is view for shared storage: the logstore (looked up in the
// catalog when another node created it) and its segments for the range.
func (s *Store) sharedViewOf(ctx context.Context, project, logstore string, f, t int64) (*view, error) {
	key := lsKey{project, logstore}
	s.mu.RLock()
	ls := s.logstores[key]
	s.mu.RUnlock()
	if ls == nil {
		if ls = s.lookupShared(ctx, key); ls == nil {
			return nil, fmt.Errorf("duckdb store: %s/%s: %w", project, logstore, store.ErrLogstoreNotFound)
		}
	}
	for retried := false; ; retried = true {
		s.mu.RLock()
		v := &view{ls: ls, schema: ls.schema, from: f, to: t, dir: s.sh.Objects.CacheDir(), objects: s.sh.Objects}
		first := max(dayOf(f), retentionStart(ls.ttlDays, s.cfg.Now()))
		s.mu.RUnlock()
		if err := s.sharedView(ctx, v, first, dayOf(t-1)); err != nil {
			return nil, err
		}
		if len(v.days) > 0 || retried {
			return v, nil
		}
		// Nothing: the logstore may have been dropped (its segments go
		// with it), or dropped and made anew under another id, on another
		// node since the last refresh.
		id := ls.id
		if ls = s.lookupShared(ctx, key); ls == nil {
			return nil, fmt.Errorf("duckdb store: %s/%s: %w", project, logstore, store.ErrLogstoreNotFound)
		}
		if ls.id == id {
			return v, nil
		}
	}
}

// sharedView fills v with the segments the catalog lists for its range
// (time pruning happens in the catalog query).
func (s *Store) sharedView(ctx context.Context, v *view, first, last int32) error {
	v.segs, v.days = map[int32][]*segment{}, nil
	if v.from >= v.to || first > last {
		return nil
	}
	recs, err := s.sh.Catalog.Segments(ctx, v.ls.id, first, last, v.from, v.to)
	if err != nil {
		return s.unavailableQuery(err)
	}
	for _, r := range recs {
		sg := &segment{id: r.ID, day: r.Day, rows: r.Rows, bytes: r.Bytes, minTime: r.MinTime, maxTime: r.MaxTime, fkey: r.Fields, stats: r.Stats}
		if err := json.Unmarshal([]byte(r.Fields), &sg.fields); err != nil {
			return fmt.Errorf("duckdb store: segment %d columns: %w", r.ID, err)
		}
		if _, ok := v.segs[r.Day]; !ok {
			v.days = append(v.days, r.Day)
		}
		v.segs[r.Day] = append(v.segs[r.Day], sg)
	}
	slices.Sort(v.days)
	return nil
}

func (s *Store) unavailableQuery(err error) error {
	return fmt.Errorf("duckdb store: shared storage unavailable: %w: %w", store.ErrOverloaded, err)
}

// fetch makes the segments of days local (downloading, in parallel, what
// the cache lacks) and keeps them until v.close. A no-op for the embedded
// store.
func (v *view) fetch(ctx context.Context, days []int32) error {
	if v.objects == nil {
		return nil
	}
	var keys []string
	for _, d := range days {
		for _, sg := range v.segs[d] {
			keys = append(keys, segmentKey(v.ls.id, sg.id))
		}
	}
	return v.fetchKeys(ctx, keys)
}

func (v *view) fetchKeys(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, release, err := v.objects.Fetch(ctx, keys)
	if err != nil {
		return fmt.Errorf("duckdb store: fetch segments: %w: %w", store.ErrOverloaded, err)
	}
	v.releases = append(v.releases, release)
	return nil
}

// fetchSources is fetch for the segments among srcs (a page's batch).
func (v *view) fetchSources(ctx context.Context, srcs []source) error {
	if v.objects == nil {
		return nil
	}
	var keys []string
	for _, sr := range srcs {
		if sr.seg != nil {
			keys = append(keys, segmentKey(v.ls.id, sr.id))
		}
	}
	return v.fetchKeys(ctx, keys)
}

// close releases the view's fetched segments.
func (v *view) close() {
	if v == nil {
		return
	}
	for _, r := range v.releases {
		r()
	}
	v.releases = nil
}

// maintainer refreshes the logstores and, on the node holding the
// maintenance lease, compacts, expires and removes buried objects.
func (s *Store) maintainer() {
	defer s.wg.Done()
	t := time.NewTicker(s.sh.MaintenanceInterval)
	defer t.Stop()
	var lastOrphans time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*s.sh.MaintenanceInterval+time.Minute)
		if err := s.refreshLogstores(ctx); err != nil {
			s.log.Warn("refreshing logstores from the catalog failed", "err", err)
		}
		if err := s.sh.Catalog.RegisterNode(ctx, s.nodeRecord()); err != nil {
			s.log.Warn("renewing this node's registration in the catalog failed", "err", err)
		}
		ok, err := s.sh.Catalog.TryLease(ctx, "maintenance", s.sh.Node, 3*s.sh.MaintenanceInterval)
		if err != nil {
			s.log.Warn("taking the maintenance lease failed", "err", err)
		}
		if ok {
			s.compactShared(ctx, s.stop)
			s.mergeShardLogs(ctx, s.stop)
			if err := s.expireShared(ctx); err != nil {
				s.log.Error("retention failed", "err", err)
			}
			s.sweepShared(ctx)
			s.forgetPacks(ctx)
			if time.Since(lastOrphans) > s.sh.OrphanAge/4 {
				lastOrphans = time.Now()
				if err := s.removeOrphans(ctx); err != nil {
					s.log.Warn("removing orphaned objects failed", "err", err)
				}
			}
		}
		cancel()
	}
}

// forgetPacks removes the pack keys recorded longer than ResendWindow
// ago, in batches, for up to one maintenance interval.
func (s *Store) forgetPacks(ctx context.Context) {
	if s.sh.ResendWindow < 0 {
		return
	}
	const batch = 10000
	for deadline := time.Now().Add(s.sh.MaintenanceInterval); time.Now().Before(deadline); {
		n, err := s.sh.Catalog.ForgetPacks(ctx, s.sh.ResendWindow, batch)
		if err != nil {
			s.log.Warn("removing old pack keys from the catalog failed", "err", err)
			return
		}
		if n < batch {
			return
		}
	}
}

// compactShared merges small segments, group after group, for up to one
// maintenance interval. Each merge is one catalog transaction; a merge
// whose inputs changed meanwhile is dropped.
func (s *Store) compactShared(ctx context.Context, stop <-chan struct{}) {
	deadline := time.Now().Add(s.sh.MaintenanceInterval)
	for time.Now().Before(deadline) {
		select {
		case <-stop:
			return
		default:
		}
		segs, err := s.sh.Catalog.SmallSegments(ctx, compactBelow, compactMin, 256)
		if err != nil {
			s.log.Warn("finding small segments failed", "err", err)
			return
		}
		if len(segs) == 0 {
			return
		}
		if err := s.mergeShared(ctx, segs); err != nil {
			s.m.compactionFailures.Inc()
			if !errors.Is(err, ErrConflict) {
				s.log.Error("merging small segments failed; they stay as they are", "segments", len(segs), "err", err)
				return
			}
		}
	}
}

func (s *Store) mergeShared(ctx context.Context, segs []SegmentRecord) (err error) {
	keys := make([]string, len(segs))
	out := SegmentRecord{Logstore: segs[0].Logstore, Day: segs[0].Day, Fields: segs[0].Fields, MinTime: segs[0].MinTime, MaxTime: segs[0].MaxTime}
	old := make([]int64, len(segs))
	stats := make([]string, len(segs))
	for i, sg := range segs {
		keys[i] = sg.Key()
		old[i] = sg.ID
		stats[i] = sg.Stats
		out.Rows += sg.Rows
		out.MinTime, out.MaxTime = min(out.MinTime, sg.MinTime), max(out.MaxTime, sg.MaxTime)
	}
	paths, release, err := s.sh.Objects.Fetch(ctx, keys)
	if err != nil {
		return err
	}
	defer release()
	ids, err := s.sh.Catalog.NewSegmentIDs(ctx, 1)
	if err != nil {
		return err
	}
	out.ID = ids[0]
	out.Stats = mergeStats(stats)
	tmp := filepath.Join(s.cfg.DataDir, uploadDir, strconv.FormatInt(out.ID, 10)+".parquet")
	defer os.Remove(tmp) // no-op once Put has moved it
	q := "COPY (SELECT * FROM " + readParquet(paths, false) + ") TO " + quoteString(tmp) +
		" (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE " + strconv.Itoa(segmentRowGroup) + ")"
	if _, err := s.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if out.Bytes, err = s.sh.Objects.Put(ctx, out.Key(), tmp); err != nil {
		return err
	}
	if err := s.sh.Catalog.ReplaceSegments(ctx, old, out, s.hold()); err != nil {
		s.forget([]SegmentRecord{out}, nil)
		return err
	}
	s.m.compactions.Inc()
	return nil
}

// expireShared removes the segments of days past each logstore's ttl.
func (s *Store) expireShared(ctx context.Context) error {
	now := s.cfg.Now()
	s.mu.RLock()
	type exp struct {
		ls    *logstore
		first int32
	}
	var todo []exp
	for _, ls := range s.logstores {
		if ls.ttlDays > 0 && ls.ttlDays < 3650 {
			todo = append(todo, exp{ls, retentionStart(ls.ttlDays, now)})
		}
	}
	s.mu.RUnlock()
	for _, e := range todo {
		// The shard log keeps what was received within the ttl, by
		// receive time, as the embedded store's shard logs do.
		cutoff := now.Add(-time.Duration(e.ls.ttlDays) * 24 * time.Hour).UnixNano()
		if n, err := s.sh.Catalog.ExpireShards(ctx, e.ls.id, cutoff, s.hold()); err != nil {
			return err
		} else if n > 0 {
			s.log.Info("dropped expired shard log chunks", "project", e.ls.key.project, "logstore", e.ls.key.logstore, "chunks", n)
		}
		n, err := s.sh.Catalog.ExpireDays(ctx, e.ls.id, e.first, s.hold())
		if err != nil {
			return err
		}
		if n > 0 {
			s.m.partitionsDropped.Inc()
			s.log.Info("dropped expired segments", "project", e.ls.key.project, "logstore", e.ls.key.logstore, "segments", n,
				"before", time.Unix(int64(e.first)*86400, 0).UTC().Format(time.DateOnly))
		}
	}
	return nil
}

// sweepShared deletes buried objects that are due.
func (s *Store) sweepShared(ctx context.Context) {
	for {
		keys, err := s.sh.Catalog.DueGraves(ctx, 1000)
		if err != nil {
			s.log.Warn("reading due graves failed", "err", err)
			return
		}
		if len(keys) == 0 {
			return
		}
		var done []string
		for _, k := range keys {
			if err := s.sh.Objects.Delete(ctx, k); err != nil {
				s.log.Warn("deleting a replaced object failed; retried later", "key", k, "err", err)
				continue
			}
			done = append(done, k)
		}
		if err := s.sh.Catalog.ForgetGraves(ctx, done); err != nil {
			s.log.Warn("forgetting deleted graves failed", "err", err)
			return
		}
		if len(done) < len(keys) {
			return
		}
	}
}

// removeOrphans deletes segment objects that no catalog row or grave
// names and that are older than OrphanAge: uploads whose node died (or
// whose commit failed) before recording them.
func (s *Store) removeOrphans(ctx context.Context) error {
	type obj struct {
		key string
		id  int64
	}
	var old []obj
	cutoff := time.Now().Add(-s.sh.OrphanAge)
	for _, kind := range []struct{ prefix, ext string }{{segmentsDir + "/", ".parquet"}, {shardObjectsDir + "/", ".groups"}} {
		err := s.sh.Objects.List(ctx, kind.prefix, func(key string, mod time.Time) error {
			if mod.After(cutoff) {
				return nil
			}
			base := path.Base(key)
			id, err := strconv.ParseInt(strings.TrimSuffix(base, kind.ext), 10, 64)
			if err != nil || !strings.HasSuffix(base, kind.ext) {
				return nil // not ours
			}
			old = append(old, obj{key, id})
			return nil
		})
		if err != nil {
			return err
		}
	}
	for len(old) > 0 {
		n := min(len(old), 1000)
		batch := old[:n]
		old = old[n:]
		ids := make([]int64, n)
		for i, o := range batch {
			ids[i] = o.id
		}
		known, err := s.sh.Catalog.Known(ctx, ids)
		if err != nil {
			return err
		}
		for _, o := range batch {
			if known[o.id] {
				continue
			}
			if err := s.sh.Objects.Delete(ctx, o.key); err != nil {
				return err
			}
			s.m.orphansRemoved.Inc()
			s.log.Info("removed an object no catalog row names (an upload that was never recorded)", "key", o.key)
		}
	}
	return nil
}
