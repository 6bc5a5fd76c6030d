package duckdb

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/store"
)

// TestQueryResourceLimits: queries that would run away (huge constants
// DuckDB folds uninterruptibly, endless scans, huge results) end with a
// clear 400-class error instead of burning CPU and memory. Each runs
// under a 20 s context: getting ctx.Err() instead of ErrInvalidQuery
// would mean the limit did not work.
func TestQueryResourceLimits(t *testing.T) {
	s := open(t, Config{QueryTimeout: 3 * time.Second, MaxResultRows: 50, MaxResultBytes: 4 << 10})
	ctx := context.Background()
	idx := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{
		"status": {Type: index.TypeLong}, "method": {Type: index.TypeText}}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: idx}))
	g := protocoltest.NginxLogGroup(64 << 10)
	require.Greater(t, len(g.Logs), 100)
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()))
	all := store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0)}

	for _, c := range []struct{ query, msg string }{
		{"* | select range(1, 100000000)", "at most 1000000 are allowed"},
		{"* | select repeat('x', 100000000)", "at most 1048576 are allowed"},
		{"* | select count(*) from range(100000000000) a", "ran longer than 3s"},
		{"* | select method limit 1000", "more than 50 rows"},
		{"* | select repeat('x', 1000000) limit 1", "larger than 4096 bytes"},
	} {
		t.Run(c.query, func(t *testing.T) {
			qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			req := all
			req.Query = c.query
			_, err := s.Search(qctx, "p", "l", req)
			require.ErrorIs(t, err, store.ErrInvalidQuery)
			require.ErrorContains(t, err, c.msg)
		})
	}

	// The store still answers afterwards (the timed-out query released its slot).
	req := all
	req.Query = "* | select count(*) as c"
	res, err := s.Search(ctx, "p", "l", req)
	require.NoError(t, err)
	require.Len(t, res.Rows, 1)

	var limit string
	require.NoError(t, s.db.QueryRowContext(ctx, "SELECT current_setting('memory_limit')").Scan(&limit))
	require.NotEmpty(t, limit)
}

func TestDefaultMemoryLimit(t *testing.T) {
	s, err := Open(Config{DataDir: t.TempDir()}, Settings{})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	var limit string
	require.NoError(t, s.db.QueryRow("SELECT current_setting('memory_limit')").Scan(&limit))
	require.Equal(t, "1.8 GiB", limit, "2GB default, not DuckDB's 80% of RAM")
}

// TestSelectStarHidesInternals: select * shows a log's keys as the Log
// Service does, not the storage columns.
func TestSelectStarHidesInternals(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	idx := &index.Config{Line: &index.LineConfig{}, Keys: map[string]index.KeyConfig{
		"status": {Type: index.TypeLong}, "method": {Type: index.TypeText}}}
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: idx}))
	g := protocoltest.NginxLogGroup(4 << 10)
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, time.Now()))
	res, err := s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select * limit 1"})
	require.NoError(t, err)
	require.Equal(t, []string{"__time__", "__source__", "__topic__", "method", "status"}, res.Keys)
	_, err = s.Search(ctx, "p", "l", store.SearchRequest{From: time.Unix(0, 0), To: time.Unix(1<<32, 0), Query: "* | select __contents__ limit 1"})
	require.ErrorIs(t, err, store.ErrInvalidQuery)
}
