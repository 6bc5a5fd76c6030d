package app_test

import (
	"crypto/md5"
	"fmt"
	"net/http"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
)

// numberedGroup is a group of n logs numbered first.. ("n"), tagged.
func numberedGroup(topic string, first, n int) *sls.LogGroup {
	g := &sls.LogGroup{Topic: proto.String(topic), Source: proto.String("10.1.2.3"),
		LogTags: []*sls.LogTag{{Key: proto.String("env"), Value: proto.String("test")}}}
	for i := range n {
		g.Logs = append(g.Logs, &sls.Log{Time: proto.Uint32(uint32(time.Now().Unix())), Contents: []*sls.LogContent{
			{Key: proto.String("n"), Value: proto.String(fmt.Sprint(first + i))},
			{Key: proto.String("msg"), Value: proto.String(fmt.Sprintf("line %d of a test", first+i))},
		}})
	}
	return g
}

// hashKeyFor returns an MD5 hash key that routes to shard of n.
func hashKeyFor(t *testing.T, c sls.ClientInterface, project, logstore string, shard int) string {
	t.Helper()
	shards, err := c.ListShards(project, logstore)
	require.NoError(t, err)
	for i := 0; ; i++ {
		k := fmt.Sprintf("%x", md5.Sum([]byte(fmt.Sprint(i))))
		if k >= shards[shard].InclusiveBeginKey && (shard == len(shards)-1 || k < shards[shard].ExclusiveBeginKey) {
			return k
		}
	}
}

// The Go SDK's shard calls: hash-key routing, GetCursor (begin, end,
// time), PullLogs with lz4 and zstd, count and end cursor, the cursors
// the SDK numbers groups with, GetCursorTime and GetPrevCursorTime, and
// clear errors for bad cursors and shards.
func TestSDKCursorsAndPull(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project, logstore = "pull-test", "events"
	_, err := c.CreateProject(project, "")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore(project, logstore, 7, 2, false, 0))

	for sh := range 2 {
		for _, from := range []string{"begin", "end"} {
			cur, err := c.GetCursor(project, logstore, sh, from)
			require.NoError(t, err)
			require.Equal(t, protocol.EncodeCursor(0), cur)
		}
	}

	// 30 groups to shard 1 by hash key, written in order.
	key := hashKeyFor(t, c, project, logstore, 1)
	var want []*sls.LogGroup
	var cut int64 // a second after every group before 20 and before every one after
	for i := range 30 {
		g := numberedGroup("routed", i*4, 4)
		want = append(want, g)
		require.NoError(t, c.PostLogStoreLogs(project, logstore, g, &key))
		if i == 19 {
			// GetCursor by time has second resolution: wait for the next
			// second (writing the first 20 may itself cross one on a
			// loaded machine).
			last := time.Now().Unix()
			for time.Now().Unix() == last {
				time.Sleep(10 * time.Millisecond)
			}
			cut = time.Now().Unix()
		}
	}
	begin, err := c.GetCursor(project, logstore, 1, "begin")
	require.NoError(t, err)
	end, err := c.GetCursor(project, logstore, 1, "end")
	require.NoError(t, err)
	require.Equal(t, protocol.EncodeCursor(30), end)
	empty, err := c.GetCursor(project, logstore, 0, "end")
	require.NoError(t, err)
	require.Equal(t, protocol.EncodeCursor(0), empty, "nothing was routed to shard 0")

	// Everything, 7 groups at a time, lz4 (the SDK default) then zstd.
	for _, ct := range []int{sls.Compress_LZ4, sls.Compress_ZSTD} {
		var got []*sls.LogGroup
		cur := begin
		for cur != end {
			gl, meta, err := c.PullLogsWithQuery(&sls.PullLogRequest{Project: project, Logstore: logstore, ShardID: 1,
				Cursor: cur, LogGroupMaxCount: 7, CompressType: ct})
			require.NoError(t, err)
			require.LessOrEqual(t, meta.Count, 7)
			require.Len(t, gl.LogGroups, meta.Count)
			require.Equal(t, len(protocolBytes(t, gl)), meta.RawSize)
			for i, g := range gl.LogGroups {
				// The SDK numbers each group with its cursor from
				// x-log-read-last-cursor.
				require.Equal(t, protocol.EncodeCursor(int64(len(got)+i)), g.GetCursor())
			}
			got = append(got, gl.LogGroups...)
			cur = meta.NextCursor
		}
		require.Len(t, got, len(want))
		for i := range want {
			// Field by field as written: the encodings are equal.
			require.Equal(t, marshal(t, want[i]), marshal(t, got[i]), "group %d", i)
		}
	}

	// At the end: nothing, the same cursor.
	gl, next, err := c.PullLogs(project, logstore, 1, end, "", 100)
	require.NoError(t, err)
	require.Empty(t, gl.LogGroups)
	require.Equal(t, end, next)

	// An end cursor: [5, 9).
	gl, next, err = c.PullLogs(project, logstore, 1, protocol.EncodeCursor(5), protocol.EncodeCursor(9), 100)
	require.NoError(t, err)
	require.Len(t, gl.LogGroups, 4)
	require.Equal(t, "20", gl.LogGroups[0].Logs[0].Contents[0].GetValue())
	require.Equal(t, protocol.EncodeCursor(9), next)

	// By receive time: the groups written after the pause start at 20.
	after, err := c.GetCursor(project, logstore, 1, fmt.Sprint(cut))
	require.NoError(t, err)
	require.Equal(t, protocol.EncodeCursor(20), after)
	ts, err := c.GetCursorTime(project, logstore, 1, protocol.EncodeCursor(20))
	require.NoError(t, err)
	require.GreaterOrEqual(t, ts.Unix(), cut)
	prev, err := c.(*sls.Client).GetPrevCursorTime(project, logstore, 1, protocol.EncodeCursor(20))
	require.NoError(t, err)
	require.Less(t, prev.Unix(), ts.Unix())

	// Round robin without a hash key: both shards get groups.
	for i := range 4 {
		require.NoError(t, c.PutLogs(project, logstore, numberedGroup("lb", i, 1)))
	}
	end0, err := c.GetCursor(project, logstore, 0, "end")
	require.NoError(t, err)
	require.NotEqual(t, protocol.EncodeCursor(0), end0)

	// Errors.
	_, _, err = c.PullLogs(project, logstore, 1, protocol.EncodeCursor(999), "", 10)
	require.ErrorContains(t, err, "InvalidCursor")
	_, _, err = c.PullLogs(project, logstore, 1, "not-a-cursor", "", 10)
	require.ErrorContains(t, err, "InvalidCursor")
	_, err = c.GetCursor(project, logstore, 2, "begin")
	require.ErrorContains(t, err, "ShardNotExist")
	_, _, err = c.PullLogs(project, logstore, 1, begin, "", 1001)
	require.ErrorContains(t, err, "ParameterInvalid")
	_, _, err = c.PullLogsWithQuery(&sls.PullLogRequest{Project: project, Logstore: logstore, ShardID: 1, Cursor: begin, LogGroupMaxCount: 10, Query: "* | where n = '1'"})
	require.ErrorContains(t, err, "not supported")
	_, err = c.SplitShard(project, logstore, 0, "3f")
	require.ErrorContains(t, err, "shardCount")
	_, err = c.MergeShards(project, logstore, 0)
	require.ErrorContains(t, err, "shardCount")

	// Python's type=log and an explicit Accept-Encoding: deflate.
	hdr := http.Header{"Accept-Encoding": {"deflate"}}
	resp, body := e.raw("GET", project, "/logstores/"+logstore+"/shards/1?type=log&count=2&cursor="+begin, hdr, nil, admin(), time.Now())
	require.Equal(t, 200, resp.StatusCode, string(body))
	require.Equal(t, "deflate", resp.Header.Get(protocol.HeaderCompressType))
	require.Equal(t, "2", resp.Header.Get(protocol.HeaderCount))
	require.Equal(t, protocol.EncodeCursor(2), resp.Header.Get(protocol.HeaderCursor))
}

func marshal(t *testing.T, g *sls.LogGroup) []byte {
	t.Helper()
	b, err := proto.Marshal(g)
	require.NoError(t, err)
	return b
}

func protocolBytes(t *testing.T, gl *sls.LogGroupList) []byte {
	t.Helper()
	b, err := proto.Marshal(gl)
	require.NoError(t, err)
	return b
}
