package duckdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/shardlog"
)

// shardsDir holds the shard logs under DataDir (see the package
// documentation, "Shards and cursors").
const shardsDir = "shards"

// shardKey returns the shard log key of a logstore's shard.
func (s *Store) shardKey(project, logstore string, shard int) (shardlog.Key, error) {
	if shard < 0 || shard >= store.MaxShards {
		return shardlog.Key{}, fmt.Errorf("duckdb store: shard %d is not in [0, %d)", shard, store.MaxShards)
	}
	s.mu.RLock()
	ls := s.logstores[lsKey{project, logstore}]
	s.mu.RUnlock()
	if ls == nil {
		return shardlog.Key{}, fmt.Errorf("duckdb store: %s/%s: %w", project, logstore, store.ErrLogstoreNotFound)
	}
	return shardlog.Key{Logstore: ls.id, Shard: shard}, nil
}

func cursorErr(err error) error {
	if errors.Is(err, shardlog.ErrOutOfRange) {
		return fmt.Errorf("duckdb store: %w: %w", store.ErrInvalidCursor, err)
	}
	return fmt.Errorf("duckdb store: %w", err)
}

// Cursor implements store.Store.
func (s *Store) Cursor(ctx context.Context, project, logstore string, shard int, at store.CursorAt) (int64, error) {
	if s.sh != nil {
		return s.cursorShared(ctx, project, logstore, shard, at)
	}
	k, err := s.shardKey(project, logstore, shard)
	if err != nil {
		return 0, err
	}
	begin, end := s.shards.Bounds(k)
	switch at.Kind {
	case store.CursorBegin:
		return begin, nil
	case store.CursorEnd:
		return end, nil
	case store.CursorTime:
		c, err := s.shards.Seek(k, at.Time.UnixNano())
		if err != nil {
			return 0, cursorErr(err)
		}
		return c, nil
	}
	return 0, fmt.Errorf("duckdb store: unknown cursor kind %d", at.Kind)
}

// CursorTime implements store.Store.
func (s *Store) CursorTime(ctx context.Context, project, logstore string, shard int, cursor int64) (time.Time, error) {
	if s.sh != nil {
		return s.cursorTimeShared(ctx, project, logstore, shard, cursor)
	}
	k, err := s.shardKey(project, logstore, shard)
	if err != nil {
		return time.Time{}, err
	}
	ns, err := s.shards.ReceiveTime(k, cursor)
	if err != nil {
		return time.Time{}, cursorErr(err)
	}
	return time.Unix(0, ns), nil
}

// Pull implements store.Store.
func (s *Store) Pull(ctx context.Context, project, logstore string, shard int, req store.PullRequest) (*store.PullResult, error) {
	if s.sh != nil {
		return s.pullShared(ctx, project, logstore, shard, req)
	}
	k, err := s.shardKey(project, logstore, shard)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := s.shards.Read(k, req.Cursor, req.EndCursor, max(req.MaxGroups, 1), max(req.MaxBytes, 1), nil)
	if err != nil {
		return nil, cursorErr(err)
	}
	return &store.PullResult{Data: b.Data, Groups: b.Groups, Next: b.Next}, nil
}
