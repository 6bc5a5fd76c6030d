package app_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
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

// A context scan stops after 20000 groups each way and says so
// (progress Incomplete) instead of reading a whole shard: 20001 groups
// of another source lie between the two groups of one.
func TestContextLogsScanLimit(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project, logstore = "ctx-limit", "app"
	_, err := c.CreateProject(project, "")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore(project, logstore, 7, 1, false, 0))
	require.NoError(t, c.CreateIndex(project, logstore, sls.Index{Line: &sls.IndexLine{Token: []string{" "}},
		Keys: map[string]sls.IndexKey{"method": {Type: "text", Token: []string{" "}}}}))
	now := time.Now()
	group := func(packID string, msgs ...string) *protocol.LogGroup {
		g := &protocol.LogGroup{Topic: "t", LogTags: []protocol.LogTag{{Key: "__pack_id__", Value: packID}}}
		for _, m := range msgs {
			g.Logs = append(g.Logs, protocol.Log{Time: uint32(now.Unix()), Contents: []protocol.LogContent{{Key: "method", Value: m}}})
		}
		return g
	}
	put := func(groups ...*protocol.LogGroup) {
		var pl protocol.SlsLogPackageList
		for _, g := range groups {
			pl.Packages = append(pl.Packages, protocol.SlsLogPackage{Data: protocol.AppendLogGroup(nil, g),
				CompressType: protocol.CompressNone, HasCompressType: true})
		}
		h := http.Header{}
		h.Set(protocol.HeaderMode, protocol.ModeBatchGroup)
		resp, body := e.raw("POST", project, "/logstores/"+logstore+"/shards/lb", h, protocol.AppendSlsLogPackageList(nil, &pl), admin(), time.Now())
		require.Equal(t, 200, resp.StatusCode, string(body))
	}
	put(group("AAAA-1", "a10", "a11"))
	var others []*protocol.LogGroup
	for i := range 20001 {
		others = append(others, group(fmt.Sprintf("BBBB-%X", i+1), "b"))
		if len(others) == 5000 || i == 20000 {
			put(others...)
			others = others[:0]
		}
	}
	put(group("AAAA-2", "a20"))

	store, err := c.GetLogStore(project, logstore)
	require.NoError(t, err)
	for _, tc := range []struct {
		method        string
		back, forward int32
		want          []string
	}{
		{"a11", 1, 1, []string{"a10", "a11"}},
		{"a20", 1, 1, []string{"a20"}},
	} {
		res, err := c.GetLogs(project, logstore, "", now.Unix()-60, now.Unix()+60, "method:"+tc.method, 10, 0, false)
		require.NoError(t, err)
		require.Len(t, res.Logs, 1)
		ctx, err := store.GetContextLogs(tc.back, tc.forward, res.Logs[0]["__tag__:__pack_id__"], res.Logs[0]["__pack_meta__"])
		require.NoError(t, err)
		require.False(t, ctx.IsComplete(), tc.method)
		var got []string
		for _, l := range ctx.Logs {
			got = append(got, l["method"])
		}
		require.Equal(t, tc.want, got)
	}
}
