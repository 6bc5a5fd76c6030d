package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
)

// TestOddValuesAreStored: bytes agents really send (GBK, NULs, keys that
// look like reserved fields, huge values) are accepted and stored, never
// answered with a 5xx that clients would retry forever.
func TestOddValuesAreStored(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	setupProject(t, c, "weird-proj", "logs")
	now := time.Now()
	for name, kv := range map[string][]string{
		"invalid utf8 value": {"msg", "caf\xe9 \xff\xfe"},
		"invalid utf8 key":   {"k\xff", "v"},
		"nul":                {"msg", "a\x00b"},
		"status not number":  {"status", "abc"},
		"status huge":        {"status", "99999999999999999999999"},
		"empty key":          {"", "v"},
		"big value":          {"msg", strings.Repeat("x", 1<<20)},
		"tag-like key":       {"__tag__:x", "v"},
		"time key":           {"__time__", "v"},
	} {
		body := rawGroup(now, kv)
		resp, b := e.raw("POST", "weird-proj", "/logstores/logs", http.Header{}, body, admin(), time.Now())
		require.Equal(t, 200, resp.StatusCode, "%s: %s", name, b)
	}
	g := protocol.LogGroup{Topic: "\xff", Source: "\x00", LogTags: []protocol.LogTag{{Key: "\xff", Value: "\xfe"}}, Logs: []protocol.Log{{Time: uint32(now.Unix())}}}
	resp, b := e.raw("POST", "weird-proj", "/logstores/logs", http.Header{}, protocol.AppendLogGroup(nil, &g), admin(), time.Now())
	require.Equal(t, 200, resp.StatusCode, "group meta: %s", b)
	res, err := c.GetLogsV2("weird-proj", "logs", &sls.GetLogRequest{From: 0, To: now.Unix() + 10, Query: "*", Lines: 100})
	require.NoError(t, err)
	require.EqualValues(t, 10, res.Count)
}
