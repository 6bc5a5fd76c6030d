package duckdb

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Merging shard log objects (shared storage). Every group commit uploads
// one small object per logstore written (sharedshards.go), about five a
// second per node, which compaction (segments only) never touches. The
// maintenance node merges the objects of each logstore and time window
// into one once the window is ShardMergeAge past: it copies each chunk's
// compressed bytes unchanged into a new object (grouped by shard, in
// cursor order, so a consumer's PullLogs reads neighbouring bytes),
// uploads it, and then swaps the chunks' object and byte range in one
// catalog transaction. Cursors, group counts and receive times are not
// touched, so the cursors consumers hold read the same groups. A reader
// that listed the old chunks before the swap still finds their objects:
// they are buried as graves, deleted only when due (as replaced
// segments). A node dying between the upload and the swap leaves an
// object no chunk names, which the orphan sweep removes.

// shardMergeObjects and shardMergeBytes bound one merge: its inputs are
// fetched into the read cache, and a merged object should stay a size
// object storage serves in one GET.
const (
	shardMergeObjects = 1000
	shardMergeBytes   = 16 << 20
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
// would gain nothing.
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
		return s.sh.Catalog.ReplaceShardObjects(ctx, lsID, old, chunks, s.hold())
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
	moved := slices.Clone(chunks)
	slices.SortFunc(moved, func(a, b ShardChunk) int { return cmp.Or(cmp.Compare(a.Shard, b.Shard), cmp.Compare(a.First, b.First)) })
	tmp := filepath.Join(s.cfg.DataDir, uploadDir, strconv.FormatInt(ids[0], 10)+".groups")
	defer os.Remove(tmp) // no-op once Put has moved it
	if err := copyChunks(tmp, moved, func(obj int64) string { return paths[slices.Index(old, obj)] }, ids[0]); err != nil {
		return err
	}
	key := ShardObjectKey(lsID, ids[0])
	if _, err := s.sh.Objects.Put(ctx, key, tmp); err != nil {
		return err
	}
	if err := s.sh.Catalog.ReplaceShardObjects(ctx, lsID, old, moved, s.hold()); err != nil {
		s.forgetKeys([]string{key})
		return err
	}
	s.m.shardMergeSeconds.Observe(time.Since(t0).Seconds())
	s.m.shardObjsMerged.Add(float64(len(old)))
	return nil
}

// copyChunks writes the chunks' bytes, in order, to the file at path and
// points them (Object, Off, Len) at it as object id.
func copyChunks(path string, chunks []ShardChunk, pathOf func(obj int64) string, id int64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write merged shard object: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var off int64
	for i := range chunks {
		ch := &chunks[i]
		data, err := readRange(pathOf(ch.Object), ch.Off, ch.Len)
		if err != nil {
			return fmt.Errorf("read shard object %d at %d: %w", ch.Object, ch.Off, err)
		}
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("write merged shard object: %w", err)
		}
		ch.Object, ch.Off = id, off
		off += ch.Len
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write merged shard object: %w", err)
	}
	return f.Close()
}
