package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
)

// restoringStore is the log store as the API and the alerts see it. A
// logstore the metadata lists but the store does not know — made through
// another server after this one started, when the servers share their
// metadata (--meta postgres://) but each keeps its own log storage — is
// created in the store from the metadata on first use, so this server
// answers with its own (possibly empty) data and accepts writes instead of
// "logstore not found". (With shared storage the store finds such a
// logstore in the segment catalog itself.)
type restoringStore struct {
	*duckdb.Store
	meta meta.Store
	log  *slog.Logger
}

// restored reports whether err says the store lacks a logstore that the
// metadata has, and creates it if so (the caller then retries once).
func (r restoringStore) restored(ctx context.Context, err error, project, logstore string) bool {
	if !errors.Is(err, store.ErrLogstoreNotFound) {
		return false
	}
	if rerr := restoreLogstore(ctx, r.meta, r.Store, project, logstore); rerr != nil {
		if !errors.Is(rerr, meta.ErrNotFound) {
			r.log.Warn("creating a logstore from the metadata failed", "project", project, "logstore", logstore, "err", rerr)
		}
		return false
	}
	r.log.Info("logstore created from the metadata (made on another server)", "project", project, "logstore", logstore)
	return true
}

// retry runs fn, and once more after restoring the logstore when the
// store did not know it.
func retry[T any](ctx context.Context, r restoringStore, project, logstore string, fn func() (T, error)) (T, error) {
	v, err := fn()
	if err != nil && r.restored(ctx, err, project, logstore) {
		return fn()
	}
	return v, err
}

func (r restoringStore) Write(ctx context.Context, project, logstore string, groups []protocol.LogGroup, received time.Time) error {
	_, err := retry(ctx, r, project, logstore, func() (struct{}, error) {
		return struct{}{}, r.Store.Write(ctx, project, logstore, groups, received)
	})
	return err
}

func (r restoringStore) WriteShard(ctx context.Context, project, logstore string, shard int, groups []protocol.LogGroup, received time.Time) error {
	_, err := retry(ctx, r, project, logstore, func() (struct{}, error) {
		return struct{}{}, r.Store.WriteShard(ctx, project, logstore, shard, groups, received)
	})
	return err
}

func (r restoringStore) Cursor(ctx context.Context, project, logstore string, shard int, at store.CursorAt) (int64, error) {
	return retry(ctx, r, project, logstore, func() (int64, error) { return r.Store.Cursor(ctx, project, logstore, shard, at) })
}

func (r restoringStore) CursorTime(ctx context.Context, project, logstore string, shard int, cursor int64) (time.Time, error) {
	return retry(ctx, r, project, logstore, func() (time.Time, error) {
		return r.Store.CursorTime(ctx, project, logstore, shard, cursor)
	})
}

func (r restoringStore) Pull(ctx context.Context, project, logstore string, shard int, req store.PullRequest) (*store.PullResult, error) {
	return retry(ctx, r, project, logstore, func() (*store.PullResult, error) { return r.Store.Pull(ctx, project, logstore, shard, req) })
}

func (r restoringStore) Search(ctx context.Context, project, logstore string, req store.SearchRequest) (*store.SearchResult, error) {
	return retry(ctx, r, project, logstore, func() (*store.SearchResult, error) { return r.Store.Search(ctx, project, logstore, req) })
}

func (r restoringStore) Histogram(ctx context.Context, project, logstore string, req store.HistogramRequest) ([]store.Bucket, error) {
	return retry(ctx, r, project, logstore, func() ([]store.Bucket, error) { return r.Store.Histogram(ctx, project, logstore, req) })
}

// restoreLogstore creates (or updates) a logstore in the store from its
// metadata: retention and index.
func restoreLogstore(ctx context.Context, m meta.Store, logs store.Store, project, name string) error {
	ls, err := m.GetLogstore(ctx, project, name)
	if err != nil {
		return err
	}
	spec := storeSpec(ls)
	if idx, err := m.GetIndex(ctx, project, name); err == nil {
		spec.Index = &idx
	}
	if err := logs.EnsureLogstore(ctx, spec); err != nil {
		return fmt.Errorf("restore logstore %s/%s: %w", project, name, err)
	}
	return nil
}
