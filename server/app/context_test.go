package app_test

import (
	"fmt"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/stretchr/testify/require"
)

// GetContextLogs with the Go SDK, as the console's context browsing uses
// it: find a log with GetLogs, then the logs its source wrote before and
// after it (same pack-id prefix; other sources' groups interleaved in
// the shards are skipped), across group boundaries, in order; then page
// further back from the first returned log's own __pack_meta__.
func TestContextLogs(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project, logstore = "ctx", "app"
	setupProject(t, c, project, logstore)
	now := time.Now()
	put := func(packID string, msgs ...string) {
		g := &sls.LogGroup{Topic: proto.String("t"), Source: proto.String("10.0.0.1")}
		if packID != "" {
			g.LogTags = []*sls.LogTag{{Key: proto.String("__pack_id__"), Value: proto.String(packID)}}
		}
		for _, m := range msgs {
			g.Logs = append(g.Logs, &sls.Log{Time: proto.Uint32(uint32(now.Unix())), Contents: []*sls.LogContent{
				{Key: proto.String("method"), Value: proto.String(m)}, {Key: proto.String("status"), Value: proto.String("200")}}})
		}
		require.NoError(t, c.PutLogs(project, logstore, g))
	}
	for g := 1; g <= 5; g++ {
		put(fmt.Sprintf("AAAA0001-%X", g), fmt.Sprintf("a%d0", g), fmt.Sprintf("a%d1", g), fmt.Sprintf("a%d2", g))
		put(fmt.Sprintf("BBBB0002-%X", g), fmt.Sprintf("b%d0", g))
		put("", fmt.Sprintf("n%d0", g))
	}

	res, err := c.GetLogs(project, logstore, "", now.Unix()-60, now.Unix()+60, "method:a31", 10, 0, false)
	require.NoError(t, err)
	require.Len(t, res.Logs, 1)
	start := res.Logs[0]
	require.Equal(t, "AAAA0001-3", start["__tag__:__pack_id__"])
	require.NotEmpty(t, start["__pack_meta__"])

	store, err := c.GetLogStore(project, logstore)
	require.NoError(t, err)
	ctx, err := store.GetContextLogs(4, 5, start["__tag__:__pack_id__"], start["__pack_meta__"])
	require.NoError(t, err)
	require.True(t, ctx.IsComplete())
	require.EqualValues(t, 4, ctx.BackLines)
	require.EqualValues(t, 5, ctx.ForwardLines)
	require.EqualValues(t, 10, ctx.TotalLines)
	var got, numbers []string
	for _, l := range ctx.Logs {
		got = append(got, l["method"])
		numbers = append(numbers, l["__index_number__"])
		require.Equal(t, "10.0.0.1", l["__source__"])
		require.Equal(t, "t", l["__topic__"])
	}
	require.Equal(t, []string{"a20", "a21", "a22", "a30", "a31", "a32", "a40", "a41", "a42", "a50"}, got)
	require.Equal(t, []string{"-4", "-3", "-2", "-1", "0", "1", "2", "3", "4", "5"}, numbers)

	// Further back from the first line, with the meta it came with.
	first := ctx.Logs[0]
	more, err := store.GetContextLogs(100, 0, first["__tag__:__pack_id__"], first["__pack_meta__"])
	require.NoError(t, err)
	got = got[:0]
	for _, l := range more.Logs {
		got = append(got, l["method"])
	}
	require.Equal(t, []string{"a10", "a11", "a12", "a20"}, got)
	require.EqualValues(t, 3, more.BackLines)

	_, err = store.GetContextLogs(1, 1, "AAAA0001-3", "garbage")
	requireSLSError(t, err, 400, "ParameterInvalid")
	_, err = store.GetContextLogs(1, 1, "AAAA0001-9", start["__pack_meta__"])
	requireSLSError(t, err, 404, "ParameterInvalid")
	_, err = store.GetContextLogs(101, 1, "AAAA0001-3", start["__pack_meta__"])
	requireSLSError(t, err, 400, "ParameterInvalid")
}
