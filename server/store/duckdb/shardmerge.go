package duckdb

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Merging shard log objects (shared storage). Every group commit uploads
// one small object per logstore written (sharedshards.go), about five a
// second per node, which compaction (segments only) never touches, and
// records one chunk row per shard in the catalog. The maintenance node
// merges the objects of each logstore and time window into one once the
// window is ShardMergeAge past: it copies each chunk's compressed bytes
// unchanged into a new object (grouped by shard, in cursor order, so a
// consumer's PullLogs reads neighbouring bytes), framing each run of a
// shard's chunks with consecutive cursors (up to shardRowBytes) as one
// chunk row (chunkPieces), uploads it, and then swaps the old rows for
// the merged ones in one catalog transaction. Cursors do not change: a
// merged row covers exactly its chunks' cursors, and its framing keeps
// each commit's group count and receive time, so the cursors consumers
// hold read the same groups and a cursor by time is the same as before.
// A reader that listed the old chunks before the swap still finds their
// objects: they are buried as graves, deleted only when due (as replaced
// segments). A node dying between the upload and the swap leaves an
// object no chunk names, which the orphan sweep removes.

// shardMergeObjects and shardMergeBytes bound one merge: its inputs are
// fetched into the read cache, and a merged object should stay a size
// object storage serves in one GET. shardRowBytes bounds a merged chunk
// row: PullLogs from a cursor inside one reads it from its start (one
// ranged GET, skipping the commits before the cursor undecompressed), and
// GetCursor by time into one reads it whole. At 256 KiB a first PullLogs
// of one group from the middle of a merged object took 20 ms, at 1 MiB
// 43 ms (8-10 ms from a commit's own object; BenchmarkShardMerge, 16 KiB
// raw per commit: 2,000 chunk rows became 24, at 1 MiB 6).
const (
	shardMergeObjects = 1000
	shardMergeBytes   = 16 << 20
	shardRowBytes     = 256 << 10
)

// mergeShardLogs merges due shard objects, window after window, for up
// to one maintenance interval.
func (s *Store) mergeShardLogs(ctx context.Context, stop <-chan struct{}) {
	deadline := time.Now().Add(s.sh.MaintenanceInterval)
	window := s.sh.ShardMergeAge.Nanoseconds()
	for time.Now().Before(deadline) {
		select {
		case <-stop:
			return
		default:
		}
		// Windows that ended at least ShardMergeAge ago.
		cutoff := (time.Now().UnixNano() - window) / window * window
		chunks, err := s.sh.Catalog.ShardMergeCandidates(ctx, window, cutoff, shardMergeObjects)
		if err != nil {
			s.log.Warn("finding shard log objects to merge failed", "err", err)
			return
		}
		if len(chunks) == 0 {
			return
		}
		if err := s.mergeShardObjects(ctx, capShardMerge(chunks)); err != nil {
			s.m.shardMergeFailures.Inc()
			if !errors.Is(err, ErrConflict) {
				s.log.Error("merging shard log objects failed; they stay as they are", "logstore", chunks[0].Logstore, "err", err)
				return
			}
		}
	}
}

// capShardMerge keeps the chunks of the first objects (chunks are
// ordered by object) that fit in shardMergeBytes, at least one object.
func capShardMerge(chunks []ShardChunk) []ShardChunk {
	var size int64
	for i, ch := range chunks {
		size += ch.Len
		if size > shardMergeBytes && i > 0 && ch.Object != chunks[i-1].Object {
			return chunks[:i]
		}
	}
	return chunks
}

// mergeShardObjects replaces the objects of chunks (every chunk of each,
// one logstore) by one. A lone object is only marked merged: copying it
// would gain nothing (it holds one chunk per shard).
func (s *Store) mergeShardObjects(ctx context.Context, chunks []ShardChunk) error {
	t0 := time.Now()
	lsID := chunks[0].Logstore
	var old []int64
	for _, ch := range chunks {
		if !slices.Contains(old, ch.Object) {
			old = append(old, ch.Object)
		}
	}
	if len(old) == 1 {
		return s.sh.Catalog.ReplaceShardObjects(ctx, lsID, old, chunks, chunks, s.hold())
	}
	keys := make([]string, len(old))
	for i, o := range old {
		keys[i] = ShardObjectKey(lsID, o)
	}
	paths, release, err := s.sh.Objects.Fetch(ctx, keys)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	defer release()
	ids, err := s.sh.Catalog.NewSegmentIDs(ctx, 1)
	if err != nil {
		return err
	}
	sorted := slices.Clone(chunks)
	slices.SortFunc(sorted, func(a, b ShardChunk) int { return cmp.Or(cmp.Compare(a.Shard, b.Shard), cmp.Compare(a.First, b.First)) })
	tmp := filepath.Join(s.cfg.DataDir, uploadDir, strconv.FormatInt(ids[0], 10)+".groups")
	defer os.Remove(tmp) // no-op once Put has moved it
	rows, err := copyChunks(tmp, chunkRuns(sorted, shardRowBytes), func(obj int64) string { return paths[slices.Index(old, obj)] }, ids[0])
	if err != nil {
		return err
	}
	key := ShardObjectKey(lsID, ids[0])
	if _, err := s.sh.Objects.Put(ctx, key, tmp); err != nil {
		return err
	}
	if err := s.sh.Catalog.ReplaceShardObjects(ctx, lsID, old, chunks, rows, s.hold()); err != nil {
		s.forgetKeys([]string{key})
		return err
	}
	s.m.shardMergeSeconds.Observe(time.Since(t0).Seconds())
	s.m.shardObjsMerged.Add(float64(len(old)))
	s.m.shardRowsMerged.Add(float64(len(chunks) - len(rows)))
	return nil
}

// chunkRuns splits chunks (ordered by shard and cursor) into the runs
// that become one chunk row each: chunks of one shard with consecutive
// cursors, up to maxBytes (a larger chunk is a run of its own) and to a
// group count the catalog's column holds.
func chunkRuns(chunks []ShardChunk, maxBytes int64) [][]ShardChunk {
	var runs [][]ShardChunk
	start, size, groups := 0, int64(0), 0
	for i, ch := range chunks {
		if i > start {
			prev := chunks[i-1]
			if ch.Shard != prev.Shard || ch.First != prev.First+int64(prev.Groups) ||
				size+ch.Len > maxBytes || groups+ch.Groups > math.MaxInt32 {
				runs = append(runs, chunks[start:i])
				start, size, groups = i, 0, 0
			}
		}
		size += ch.Len
		groups += ch.Groups
	}
	if start < len(chunks) {
		runs = append(runs, chunks[start:])
	}
	return runs
}

// copyChunks writes the runs' chunks, in order and framed (appendPiece),
// to the file at path and returns one merged chunk row per run in object
// id.
func copyChunks(path string, runs [][]ShardChunk, pathOf func(obj int64) string, id int64) ([]ShardChunk, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("write merged shard object: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var off int64
	var hdr []byte
	rows := make([]ShardChunk, 0, len(runs))
	for _, run := range runs {
		row := ShardChunk{Logstore: run[0].Logstore, Shard: run[0].Shard, First: run[0].First, Object: id, Off: off, Merged: true}
		for _, ch := range run {
			data, err := readRange(pathOf(ch.Object), ch.Off, ch.Len)
			if err != nil {
				return nil, fmt.Errorf("read shard object %d at %d: %w", ch.Object, ch.Off, err)
			}
			hdr = appendPiece(hdr[:0], ch)
			if _, err := w.Write(hdr); err != nil {
				return nil, fmt.Errorf("write merged shard object: %w", err)
			}
			if _, err := w.Write(data); err != nil {
				return nil, fmt.Errorf("write merged shard object: %w", err)
			}
			off += int64(len(hdr)) + ch.Len
			row.Groups += ch.Groups
			row.Received = max(row.Received, ch.Received)
		}
		row.Len = off - row.Off
		rows = append(rows, row)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("write merged shard object: %w", err)
	}
	return rows, f.Close()
}
