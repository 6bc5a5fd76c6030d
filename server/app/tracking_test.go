package app_test

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
)

// Web tracking: unsigned POST (JSON log group) and GET (pixel) to
// /logstores/{ls}/track are refused until the logstore enables tracking,
// then stored with the client's address as source and __client_ip__ tag;
// browsers get CORS headers and their preflight answered.
func TestWebTracking(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project, logstore = "tracked", "web"
	setupProject(t, c, project, logstore)

	body := []byte(`{"__topic__":"page","__logs__":[{"path":"/home","status":"200"},{"path":"/cart","status":"404","__time__":"` +
		strconv.FormatInt(time.Now().Unix(), 10) + `"}],"__tags__":{"app":"shop"}}`)
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	resp, b := e.raw("POST", project, "/logstores/"+logstore+"/track", jsonHdr, body, nil, time.Now())
	requireRawError(t, resp, b, 403, protocol.CodeUnauthorized)
	require.Contains(t, string(b), "enable_tracking")

	ls, err := c.GetLogStore(project, logstore)
	require.NoError(t, err)
	ls.WebTracking = true
	require.NoError(t, c.UpdateLogStoreV2(project, ls))

	resp, b = e.raw("POST", project, "/logstores/"+logstore+"/track", jsonHdr, body, nil, time.Now())
	require.Equal(t, 200, resp.StatusCode, string(b))
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))

	q := url.Values{"APIVersion": {"0.6.0"}, "path": {"/pixel"}, "status": {"200"}, "__topic__": {"page"}}
	resp, b = e.raw("GET", project, "/logstores/"+logstore+"/track?"+q.Encode(), nil, nil, nil, time.Now())
	require.Equal(t, 200, resp.StatusCode, string(b))
	require.Equal(t, "image/gif", resp.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(string(b), "GIF89a"))
	ua := http.Header{"User-Agent": {"test-browser/1.0"}, "Referer": {"http://shop.example/cart"}}
	resp, _ = e.raw("GET", project, "/logstores/"+logstore+"/track_ua.gif?"+q.Encode(), ua, nil, nil, time.Now())
	require.Equal(t, 200, resp.StatusCode)

	resp, _ = e.raw("OPTIONS", project, "/logstores/"+logstore+"/track", http.Header{"Origin": {"http://shop.example"},
		"Access-Control-Request-Method": {"POST"}}, nil, nil, time.Now())
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "x-log-bodyrawsize")

	resp, b = e.raw("GET", project, "/logstores/nope/track?a=1", nil, nil, nil, time.Now())
	requireRawError(t, resp, b, 404, protocol.CodeLogStoreNotExist)
	resp, b = e.raw("POST", project, "/logstores/"+logstore+"/track", jsonHdr, []byte(`{"__logs__": 1}`), nil, time.Now())
	requireRawError(t, resp, b, 400, protocol.CodePostBodyInvalid)
	// Unsigned writes are bounded tighter than PutLogs: 3 MB, 4096 logs.
	big := []byte(`{"__logs__":[{"msg":"` + strings.Repeat("x", 3<<20) + `"}]}`)
	resp, b = e.raw("POST", project, "/logstores/"+logstore+"/track", jsonHdr, big, nil, time.Now())
	requireRawError(t, resp, b, 400, protocol.CodePostBodyTooLarge)
	many := []byte(`{"__logs__":[` + strings.Repeat(`{"a":"1"},`, 4096) + `{"a":"1"}]}`)
	resp, b = e.raw("POST", project, "/logstores/"+logstore+"/track", jsonHdr, many, nil, time.Now())
	requireRawError(t, resp, b, 400, protocol.CodeParameterInvalid)
	require.Contains(t, string(b), "4096")

	now := time.Now().Unix()
	res, err := c.GetLogs(project, logstore, "", now-120, now+120, "*", 100, 0, false)
	require.NoError(t, err)
	var got []string
	for _, l := range res.Logs {
		require.Equal(t, "127.0.0.1", l["__source__"])
		require.Equal(t, "127.0.0.1", l["__tag__:__client_ip__"])
		require.Equal(t, "page", l["__topic__"])
		got = append(got, l["path"]+" "+l["status"]+" "+l["__tag__:app"]+" "+l["__userAgent__"]+" "+l["__referer__"])
	}
	sort.Strings(got)
	require.Equal(t, []string{
		"/cart 404 shop  ",
		"/home 200 shop  ",
		"/pixel 200   ",
		"/pixel 200  test-browser/1.0 http://shop.example/cart",
	}, got)
}
