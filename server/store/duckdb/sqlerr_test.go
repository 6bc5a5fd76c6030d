package duckdb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/query"
	"github.com/sluicelog/sluice/server/store"
)

// TestSQLErrorsInUserTerms checks that an SQL error DuckDB reports is
// given back in terms of the query the user wrote: never the statement
// the store built around it (segment files, the time filter, the LIMIT it
// added), and placed at the byte of the query DuckDB pointed to when it
// did.
func TestSQLErrorsInUserTerms(t *testing.T) {
	s := open(t, Config{})
	ctx := context.Background()
	require.NoError(t, s.EnsureLogstore(ctx, store.LogstoreSpec{Project: "p", Logstore: "l", Index: benchIndex()}))
	g := protocoltest.NginxLogGroup(16 << 10)
	now := time.Now()
	for i := range g.Logs {
		g.Logs[i].Time = uint32(now.Unix())
	}
	require.NoError(t, s.Write(ctx, "p", "l", []protocol.LogGroup{*g}, now))

	for _, c := range []struct {
		query string
		at    string // where the error is placed: the first occurrence of this in the query ("" = not placed)
		msg   string
	}{
		{"* | select status, nosuchcolumn", "nosuchcolumn", `"nosuchcolumn" not found`},
		{"status:200 | select   method,\n  count(*) as c from log group by status", "method", `"method" must appear in the GROUP BY`},
		{"* | select status from log where method > 3 and nosuch = 1", "> 3", "Cannot compare values"},
		{`* | select "日志" from log`, `"日志"`, `"日志" not found`},
		{"* | select cast(method as bigint) as m", "cast", `'GET'`},
		{"* | select 9223372036854775807 + status as x", "", "Overflow"},
	} {
		t.Run(c.query, func(t *testing.T) {
			_, err := s.Search(ctx, "p", "l", store.SearchRequest{From: now.Add(-time.Hour), To: now.Add(time.Hour), Query: c.query})
			require.Error(t, err)
			require.ErrorIs(t, err, store.ErrInvalidQuery)
			msg := err.Error()
			require.Contains(t, msg, c.msg)
			for _, internal := range []string{"read_parquet", "__line__", "__time__ >=", "LIMIT 100", `WITH "log"`, "LINE 1", "Binder Error", "\n"} {
				require.NotContains(t, msg, internal, "the store's own SQL or DuckDB's layout leaks")
			}
			var qe *query.Error
			if c.at == "" {
				require.False(t, errors.As(err, &qe), "%v", err)
				return
			}
			require.True(t, errors.As(err, &qe), "placed in the query: %v", err)
			require.Equal(t, strings.Index(c.query, c.at), qe.Pos, "%v", err)
			require.Equal(t, "SQL error", qe.Kind)
		})
	}
}
