package duckdb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/store"
)

// Shard logs on shared storage (see "Several nodes" in the package
// documentation): every group commit writes, per logstore, one object
// holding each shard's new groups as LogGroupList entries, and records
// per shard a chunk (cursor range, object, byte range) in the catalog in
// the same transaction as the commit's segments. The catalog assigns the
// cursors, so they are the same on every node and after any restart.

// shardObject is one commit's shard chunks of one logstore: per shard
// its groups (raw) and its chunk (Object and Off/Len set by
// putShardObject; First by the catalog).
type shardObject struct {
	ls     *logstore
	raw    [][]byte // per chunk: LogGroupList entries
	chunks []ShardChunk
	key    string // set once uploaded
}

// shardObjectsOf groups the requests' entries by logstore and shard, in
// request order (the order the writes were accepted in).
func shardObjectsOf(reqs []*writeReq) []*shardObject {
	byLS := map[*logstore]map[int][]*writeReq{}
	var lsOrder []*logstore
	var shardOrder = map[*logstore][]int{}
	for _, r := range reqs {
		if r.ls == nil || len(r.entries) == 0 {
			continue
		}
		m := byLS[r.ls]
		if m == nil {
			m = map[int][]*writeReq{}
			byLS[r.ls] = m
			lsOrder = append(lsOrder, r.ls)
		}
		if _, ok := m[r.shard]; !ok {
			shardOrder[r.ls] = append(shardOrder[r.ls], r.shard)
		}
		m[r.shard] = append(m[r.shard], r)
	}
	out := make([]*shardObject, 0, len(lsOrder))
	for _, ls := range lsOrder {
		o := &shardObject{ls: ls}
		shards := shardOrder[ls]
		slices.Sort(shards)
		for _, sh := range shards {
			ch := ShardChunk{Logstore: ls.id, Shard: sh}
			var raw []byte
			for _, r := range byLS[ls][sh] {
				raw = append(raw, r.entries...)
				ch.Groups += r.ngroups
				ch.Received = max(ch.Received, r.received)
			}
			o.raw = append(o.raw, raw)
			o.chunks = append(o.chunks, ch)
		}
		out = append(out, o)
	}
	return out
}

// putShardObject uploads o as object id: each chunk a zstd frame of its
// own (read alone by PullLogs). Uncompressed, the object was several
// times the size of the commit's Parquet segments, and SeaweedFS's CPU per
// acknowledged line rose 4.5× (TestBenchScaleout, 1 node: 1.61 → 7.24
// µs/line); compressed it is about the segments' size.
func (s *Store) putShardObject(ctx context.Context, o *shardObject, id int64) error {
	var data []byte
	for i, raw := range o.raw {
		off := int64(len(data))
		data = binary.AppendUvarint(data, uint64(len(raw)))
		var err error
		if data, err = protocol.AppendCompressed(data, raw, protocol.CompressZstd); err != nil {
			return fmt.Errorf("compress shard chunk: %w", err)
		}
		o.chunks[i].Off, o.chunks[i].Len = off, int64(len(data))-off
	}
	o.raw = nil
	tmp := filepath.Join(s.cfg.DataDir, uploadDir, strconv.FormatInt(id, 10)+".groups")
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return fmt.Errorf("write shard object: %w", err)
	}
	key := ShardObjectKey(o.ls.id, id)
	if _, err := s.sh.Objects.Put(ctx, key, tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	o.key = key
	for i := range o.chunks {
		o.chunks[i].Object = id
	}
	return nil
}

// sharedLogstore finds a logstore for a shard read.
func (s *Store) sharedLogstore(ctx context.Context, project, logstore string, shard int) (*logstore, error) {
	if shard < 0 || shard >= store.MaxShards {
		return nil, fmt.Errorf("duckdb store: shard %d is not in [0, %d)", shard, store.MaxShards)
	}
	key := lsKey{project, logstore}
	s.mu.RLock()
	ls := s.logstores[key]
	s.mu.RUnlock()
	if ls == nil {
		if ls = s.lookupShared(ctx, key); ls == nil {
			return nil, fmt.Errorf("duckdb store: %s/%s: %w", project, logstore, store.ErrLogstoreNotFound)
		}
	}
	return ls, nil
}

func (s *Store) cursorShared(ctx context.Context, project, logstore string, shard int, at store.CursorAt) (int64, error) {
	ls, err := s.sharedLogstore(ctx, project, logstore, shard)
	if err != nil {
		return 0, err
	}
	if at.Kind == store.CursorTime {
		t := at.Time.UnixNano()
		ch, err := s.sh.Catalog.ShardSeek(ctx, ls.id, shard, t)
		if err != nil {
			return 0, s.unavailableQuery(err)
		}
		if ch.Groups == 0 {
			return ch.First, nil // the end
		}
		// A merged chunk spans many commits: the first of them received
		// at or after t, as before the merge.
		pieces, err := s.readPieces(ctx, ls.id, ch)
		if err != nil {
			return 0, err
		}
		for _, p := range pieces {
			if p.received >= t {
				return p.first, nil
			}
		}
		return ch.First, nil
	}
	begin, end, _, err := s.sh.Catalog.ShardChunks(ctx, ls.id, shard, 0, 0)
	if err != nil {
		return 0, s.unavailableQuery(err)
	}
	switch at.Kind {
	case store.CursorBegin:
		return begin, nil
	case store.CursorEnd:
		return end, nil
	}
	return 0, fmt.Errorf("duckdb store: unknown cursor kind %d", at.Kind)
}

func (s *Store) cursorTimeShared(ctx context.Context, project, logstore string, shard int, cursor int64) (time.Time, error) {
	ls, err := s.sharedLogstore(ctx, project, logstore, shard)
	if err != nil {
		return time.Time{}, err
	}
	begin, end, _, err := s.sh.Catalog.ShardChunks(ctx, ls.id, shard, 0, 0)
	if err != nil {
		return time.Time{}, s.unavailableQuery(err)
	}
	c := cursor
	if c == end && c > begin {
		c-- // the end cursor: when the last group was received
	}
	if c < begin || c >= end {
		return time.Time{}, fmt.Errorf("duckdb store: %w: cursor %d is outside the shard's [%d, %d)", store.ErrInvalidCursor, cursor, begin, end)
	}
	_, _, chunks, err := s.sh.Catalog.ShardChunks(ctx, ls.id, shard, c, 1)
	if err != nil {
		return time.Time{}, s.unavailableQuery(err)
	}
	if len(chunks) == 0 {
		return time.Time{}, fmt.Errorf("duckdb store: %w: cursor %d expired meanwhile", store.ErrInvalidCursor, cursor)
	}
	pieces, err := s.readPieces(ctx, ls.id, chunks[0])
	if err != nil {
		return time.Time{}, err
	}
	for _, p := range pieces {
		if c < p.first+int64(p.groups) {
			return time.Unix(0, p.received), nil
		}
	}
	return time.Unix(0, chunks[0].Received), nil
}

// readPieces returns the commits' chunks a chunk row holds: itself,
// unless it is a merged row of several groups, which is read (by range)
// to find them.
func (s *Store) readPieces(ctx context.Context, lsID int64, ch ShardChunk) ([]chunkPiece, error) {
	if !ch.Merged || ch.Groups == 1 {
		return []chunkPiece{{first: ch.First, groups: ch.Groups, received: ch.Received}}, nil
	}
	raw, err := s.readChunks(ctx, lsID, []ShardChunk{ch})
	if err != nil {
		return nil, err
	}
	pieces, err := chunkPieces(ch, raw[0])
	if err != nil {
		return nil, fmt.Errorf("duckdb store: shard log object %s at %d: %w", ShardObjectKey(lsID, ch.Object), ch.Off, err)
	}
	return pieces, nil
}

// maxChunkBytes bounds a shard chunk's decompressed size: a commit holds
// at most the store's queue (QueueBytes) of writes.
const maxChunkBytes = 1 << 30

// pullChunks bounds the chunks one PullLogs lists: each holds at least
// one group, so maxGroups of them always suffice, and the bytes limit
// usually stops it sooner.
const pullChunks = 1000

func (s *Store) pullShared(ctx context.Context, project, logstore string, shard int, req store.PullRequest) (*store.PullResult, error) {
	ls, err := s.sharedLogstore(ctx, project, logstore, shard)
	if err != nil {
		return nil, err
	}
	maxGroups, maxBytes := max(req.MaxGroups, 1), max(req.MaxBytes, 1)
	begin, end, chunks, err := s.sh.Catalog.ShardChunks(ctx, ls.id, shard, req.Cursor, min(maxGroups, pullChunks))
	if err != nil {
		return nil, s.unavailableQuery(err)
	}
	out := &store.PullResult{Next: req.Cursor}
	if req.Cursor < begin || req.Cursor > end {
		if begin == 0 && end == 0 {
			return nil, fmt.Errorf("duckdb store: %w: cursor %d of an empty shard (begin and end are 0)", store.ErrInvalidCursor, req.Cursor)
		}
		return nil, fmt.Errorf("duckdb store: %w: cursor %d is outside the shard's [%d, %d]", store.ErrInvalidCursor, req.Cursor, begin, end)
	}
	stop := end
	if req.EndCursor >= 0 && req.EndCursor < stop {
		stop = req.EndCursor
	}
	if req.Cursor >= stop || len(chunks) == 0 {
		return out, nil
	}
	// Fetch only the chunks the limits can reach (estimated by size).
	var size int64
	n := 0
	for n < len(chunks) && chunks[n].First < stop {
		if n > 0 && (size >= int64(maxBytes) || chunks[n].First-req.Cursor >= int64(maxGroups)) {
			break
		}
		size += chunks[n].Len
		n++
	}
	chunks = chunks[:n]
	raw, err := s.readChunks(ctx, ls.id, chunks)
	if err != nil {
		return nil, err
	}
	for i, ch := range chunks {
		key := ShardObjectKey(ls.id, ch.Object)
		pieces, err := chunkPieces(ch, raw[i])
		if err != nil {
			return nil, fmt.Errorf("duckdb store: shard log object %s at %d: %w", key, ch.Off, err)
		}
		for _, p := range pieces {
			if p.first+int64(p.groups) <= out.Next {
				continue // before the cursor: skipped undecompressed
			}
			if p.first >= stop || out.Groups >= maxGroups {
				return out, nil
			}
			data, err := decompressChunk(p.data)
			if err != nil {
				return nil, fmt.Errorf("duckdb store: shard log object %s at %d: %w", key, ch.Off, err)
			}
			for c := p.first; len(data) > 0; c++ {
				var e []byte
				if e, data, err = nextGroupEntry(data); err != nil {
					return nil, fmt.Errorf("duckdb store: shard log object %s at %d: %w", key, ch.Off, err)
				}
				if c < out.Next {
					continue
				}
				if c >= stop || out.Groups >= maxGroups || out.Groups > 0 && len(out.Data)+len(e) > maxBytes {
					return out, nil
				}
				out.Data = append(out.Data, e...)
				out.Groups++
				out.Next = c + 1
			}
		}
	}
	return out, nil
}

// readChunks returns each chunk's bytes. The
// objects of one commit are fetched whole into the read cache, as
// segments are: small, and every shard's consumer on the node reads
// them. Of a merged object (many commits', every shard's) only the
// chunks are read, one ranged read per run of chunks that lie back to
// back (a merged object holds a shard's chunks in cursor order, so
// usually one per pull).
func (s *Store) readChunks(ctx context.Context, lsID int64, chunks []ShardChunk) ([][]byte, error) {
	var keys []string
	for _, ch := range chunks {
		if k := ShardObjectKey(lsID, ch.Object); !ch.Merged && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var paths []string
	if len(keys) > 0 {
		var release func()
		var err error
		if paths, release, err = s.sh.Objects.Fetch(ctx, keys); err != nil {
			return nil, fmt.Errorf("duckdb store: fetch shard log: %w: %w", store.ErrOverloaded, err)
		}
		defer release()
	}
	raw := make([][]byte, len(chunks))
	for i := 0; i < len(chunks); {
		ch := chunks[i]
		key := ShardObjectKey(lsID, ch.Object)
		if !ch.Merged {
			var err error
			if raw[i], err = readRange(paths[slices.Index(keys, key)], ch.Off, ch.Len); err != nil {
				return nil, fmt.Errorf("duckdb store: read shard log: %w", err)
			}
			i++
			continue
		}
		j := i + 1
		for j < len(chunks) && chunks[j].Merged && chunks[j].Object == ch.Object && chunks[j].Off == chunks[j-1].Off+chunks[j-1].Len {
			j++
		}
		data, err := s.sh.Objects.ReadRange(ctx, key, ch.Off, chunks[j-1].Off+chunks[j-1].Len-ch.Off)
		if err != nil {
			return nil, fmt.Errorf("duckdb store: read shard log: %w: %w", store.ErrOverloaded, err)
		}
		for k := i; k < j; k++ {
			o := chunks[k].Off - ch.Off
			raw[k] = data[o : o+chunks[k].Len : o+chunks[k].Len]
		}
		i = j
	}
	return raw, nil
}

// A chunk row of a merged object (shardmerge.go) holds a run of commits'
// chunks of one shard, consecutive cursors, each framed so that a reader
// skips to a cursor without decompressing the chunks before it, and
// finds each commit's receive time (GetCursor by time stays as exact as
// before the merge):
//
//	0x00 | uvarint groups | uvarint received | uvarint length | the commit's chunk
//
// A commit's chunk starts with its decompressed size (uvarint), never 0
// (it holds at least one group), so the leading 0 tells the two apart.

// chunkPiece is one commit's chunk within a chunk row.
type chunkPiece struct {
	first    int64
	groups   int
	received int64
	data     []byte // the size, then the zstd frame
}

// appendPiece appends ch's framing (its data follows).
func appendPiece(b []byte, ch ShardChunk) []byte {
	b = append(b, 0)
	b = binary.AppendUvarint(b, uint64(ch.Groups))
	b = binary.AppendUvarint(b, uint64(ch.Received))
	return binary.AppendUvarint(b, uint64(ch.Len))
}

var errBadPiece = errors.New("malformed merged chunk")

// chunkPieces splits a chunk row's bytes b into its commits' chunks.
func chunkPieces(ch ShardChunk, b []byte) ([]chunkPiece, error) {
	if len(b) == 0 || b[0] != 0 {
		return []chunkPiece{{first: ch.First, groups: ch.Groups, received: ch.Received, data: b}}, nil
	}
	var out []chunkPiece
	first, end := ch.First, ch.First+int64(ch.Groups)
	for len(b) > 0 {
		if b[0] != 0 {
			return nil, errBadPiece
		}
		var v [3]uint64
		b = b[1:]
		for i := range v {
			n, k := binary.Uvarint(b)
			if k <= 0 {
				return nil, errBadPiece
			}
			v[i], b = n, b[k:]
		}
		if v[0] == 0 || v[0] > uint64(end-first) || v[2] > uint64(len(b)) {
			return nil, errBadPiece
		}
		out = append(out, chunkPiece{first: first, groups: int(v[0]), received: int64(v[1]), data: b[:v[2]:v[2]]})
		first += int64(v[0])
		b = b[v[2]:]
	}
	if first != end {
		return nil, fmt.Errorf("%w: its chunks hold %d groups, its row %d", errBadPiece, first-ch.First, ch.Groups)
	}
	return out, nil
}

// decompressChunk decompresses a chunk: its size (uvarint), then a zstd
// frame. The size bounds the output: without it the decoder reserves its
// whole limit for every chunk (zstd frames need not record their size).
func decompressChunk(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxChunkBytes {
		return nil, fmt.Errorf("chunk size missing or over %d bytes", maxChunkBytes)
	}
	return protocol.Decompress(nil, b[k:], protocol.CompressZstd, int(n), maxChunkBytes)
}

func readRange(path string, off, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

var errBadEntry = errors.New("malformed LogGroupList entry")

// nextGroupEntry splits the first LogGroupList entry (tag 1,
// length-delimited) off b.
func nextGroupEntry(b []byte) (entry, rest []byte, err error) {
	if len(b) < 2 || b[0] != 0x0a {
		return nil, nil, errBadEntry
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || uint64(len(b)-1-k) < n {
		return nil, nil, errBadEntry
	}
	end := 1 + k + int(n)
	return b[:end], b[end:], nil
}
