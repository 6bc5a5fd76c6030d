package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/internal/s3test"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/app"
	"github.com/sluicelog/sluice/server/app/apptest"
	"github.com/sluicelog/sluice/server/meta"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.Wrap(s3test.Wrap(m)), apptest.IdleConns()...)
}

const (
	baseDomain  = apptest.BaseDomain
	adminID     = apptest.AdminID
	adminSecret = apptest.AdminSecret
)

// env is a real server (JSON metadata, DuckDB store) on 127.0.0.1:0.
type env struct {
	*apptest.Server
	t *testing.T
}

func start(t *testing.T) *env {
	t.Helper()
	return &env{Server: apptest.Start(t, apptest.Options{}), t: t}
}

// raw sends a request signed by protocol.Signer (the agent's signer), for
// what the Go SDK cannot send (deflate, batch_group, bad bodies).
func (e *env) raw(method, project, path string, hdr http.Header, body []byte, signer *protocol.Signer, now time.Time) (*http.Response, []byte) {
	e.t.Helper()
	host := e.Host()
	if project != "" {
		host = project + "." + e.Host()
	}
	r, err := http.NewRequest(method, "http://"+host+path, bytes.NewReader(body))
	require.NoError(e.t, err)
	if hdr != nil {
		r.Header = hdr.Clone()
	}
	r.Header.Set(protocol.HeaderAPIVersion, protocol.APIVersion)
	if r.Header.Get(protocol.HeaderBodyRawSize) == "" {
		r.Header.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(body)))
	}
	if body != nil && r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
	}
	if signer != nil {
		require.NoError(e.t, signer.SignRequest(r, body, now))
	}
	resp, err := e.HTTPClient().Do(r)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp, b
}

func admin() *protocol.Signer {
	return &protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: adminID, AccessKeySecret: adminSecret}}
}

func requireSLSError(t *testing.T, err error, status int, code string) {
	t.Helper()
	require.Error(t, err)
	var se *sls.Error
	require.True(t, errors.As(err, &se), "want *sls.Error, got %T: %v", err, err)
	require.Equal(t, int32(status), se.HTTPCode, se.String())
	require.Equal(t, code, se.Code, se.String())
	require.NotEmpty(t, se.RequestID, "x-log-requestid on error replies")
}

func requireRawError(t *testing.T, resp *http.Response, body []byte, status int, code protocol.ErrorCode) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode, string(body))
	var e protocol.Error
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	require.Equal(t, code, e.Code, string(body))
	require.NotEmpty(t, e.Message)
	require.NotEmpty(t, resp.Header.Get(protocol.HeaderRequestID))
	require.NotEmpty(t, resp.Header.Get(protocol.HeaderLogTime))
}

func sdkGroup(topic string, at time.Time, kv ...[]string) *sls.LogGroup {
	g := &sls.LogGroup{Topic: proto.String(topic), Source: proto.String("10.0.0.9")}
	for _, pairs := range kv {
		l := &sls.Log{Time: proto.Uint32(uint32(at.Unix()))}
		for i := 0; i+1 < len(pairs); i += 2 {
			l.Contents = append(l.Contents, &sls.LogContent{Key: proto.String(pairs[i]), Value: proto.String(pairs[i+1])})
		}
		g.Logs = append(g.Logs, l)
	}
	return g
}

func rawGroup(at time.Time, kv ...[]string) []byte {
	g := protocol.LogGroup{Source: "10.0.0.8", LogTags: []protocol.LogTag{{Key: "__path__", Value: "/var/log/app.log"}}}
	for _, pairs := range kv {
		l := protocol.Log{Time: uint32(at.Unix())}
		for i := 0; i+1 < len(pairs); i += 2 {
			l.Contents = append(l.Contents, protocol.LogContent{Key: pairs[i], Value: pairs[i+1]})
		}
		g.Logs = append(g.Logs, l)
	}
	return protocol.AppendLogGroup(nil, &g)
}

func compress(t *testing.T, raw []byte, ct protocol.CompressType) []byte {
	t.Helper()
	out, err := protocol.AppendCompressed(nil, raw, ct)
	require.NoError(t, err)
	return out
}

func setupProject(t *testing.T, c sls.ClientInterface, project, logstore string) {
	t.Helper()
	_, err := c.CreateProject(project, "test project")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore(project, logstore, 7, 2, false, 0))
	require.NoError(t, c.CreateIndex(project, logstore, sls.Index{
		Line: &sls.IndexLine{Token: []string{" ", ",", ";", "=", "/", ":"}},
		Keys: map[string]sls.IndexKey{
			"status": {Type: "long", DocValue: true},
			"method": {Type: "text", DocValue: true, Token: []string{" "}},
			"path":   {Type: "text", DocValue: true, Token: []string{"/"}},
		},
	}))
}

func TestSDKEndToEnd(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project, logstore = "web-prod", "access"
	setupProject(t, c, project, logstore)

	p, err := c.GetProject(project)
	require.NoError(t, err)
	require.Equal(t, "test project", p.Description)
	require.Equal(t, "Normal", p.Status)
	names, err := c.ListProject()
	require.NoError(t, err)
	require.Equal(t, []string{project}, names)

	ls, err := c.GetLogStore(project, logstore)
	require.NoError(t, err)
	require.Equal(t, 7, ls.TTL)
	require.Equal(t, 2, ls.ShardCount)
	stores, err := c.ListLogStore(project)
	require.NoError(t, err)
	require.Equal(t, []string{logstore}, stores)
	shards, err := c.ListShards(project, logstore)
	require.NoError(t, err)
	require.Len(t, shards, 2)
	require.Equal(t, "00000000000000000000000000000000", shards[0].InclusiveBeginKey)
	require.Equal(t, shards[0].ExclusiveBeginKey, shards[1].InclusiveBeginKey)
	idx, err := c.GetIndex(project, logstore)
	require.NoError(t, err)
	require.Equal(t, "long", idx.Keys["status"].Type)

	now := time.Now()
	// The Go SDK: lz4 (its default), zstd, none.
	require.NoError(t, c.PutLogs(project, logstore, sdkGroup("lz4", now,
		[]string{"status", "200", "method", "GET", "path", "/index.html"},
		[]string{"status", "500", "method", "POST", "path", "/api/login"})))
	require.NoError(t, c.PutLogsWithCompressType(project, logstore, sdkGroup("zstd", now,
		[]string{"status", "500", "method", "GET", "path", "/api/cart"}), sls.Compress_ZSTD))
	require.NoError(t, c.PutLogsWithCompressType(project, logstore, sdkGroup("none", now,
		[]string{"status", "404", "method", "GET", "path", "/missing"}), sls.Compress_None))
	require.NoError(t, c.PutLogsWithMetricStoreURL(project, logstore, sdkGroup("route", now,
		[]string{"status", "204", "method", "HEAD", "path", "/metricstore-url"})))
	key := "abc"
	require.NoError(t, c.PostLogStoreLogs(project, logstore, sdkGroup("route", now,
		[]string{"status", "201", "method", "PUT", "path", "/api/item"}), &key))

	// deflate on the LoongCollector path /shards/lb.
	raw := rawGroup(now, []string{"status", "503", "method", "GET", "path", "/deflate"})
	h := http.Header{}
	h.Set(protocol.HeaderCompressType, "deflate")
	h.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(raw)))
	resp, body := e.raw("POST", project, "/logstores/"+logstore+"/shards/lb", h, compress(t, raw, protocol.CompressDeflate), admin(), time.Now())
	require.Equal(t, 200, resp.StatusCode, string(body))
	require.NotEmpty(t, resp.Header.Get(protocol.HeaderRequestID))
	serverTime, err := strconv.ParseInt(resp.Header.Get(protocol.HeaderLogTime), 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().Unix(), serverTime, 5)

	// batch_group: an SlsLogPackageList, packages lz4 (header default) and
	// zstd (package compress_type), each with its uncompressed size.
	r1 := rawGroup(now, []string{"status", "500", "method", "DELETE", "path", "/batch/1"})
	r2 := rawGroup(now, []string{"status", "200", "method", "GET", "path", "/batch/2"}, []string{"status", "200", "method", "GET", "path", "/batch/3"})
	pl := protocol.SlsLogPackageList{Packages: []protocol.SlsLogPackage{
		{Data: compress(t, r1, protocol.CompressLZ4), UncompressSize: int32(len(r1)), HasUncompressSize: true},
		{Data: compress(t, r2, protocol.CompressZstd), UncompressSize: int32(len(r2)), HasUncompressSize: true,
			CompressType: protocol.CompressZstd, HasCompressType: true},
	}}
	h = http.Header{}
	h.Set(protocol.HeaderCompressType, "lz4")
	h.Set(protocol.HeaderMode, protocol.ModeBatchGroup)
	plBody := protocol.AppendSlsLogPackageList(nil, &pl)
	h.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(plBody)))
	resp, body = e.raw("POST", project, "/logstores/"+logstore+"/shards/lb", h, plBody, admin(), time.Now())
	require.Equal(t, 200, resp.StatusCode, string(body))

	from, to := now.Add(-time.Hour).Unix(), now.Add(time.Hour).Unix()
	all, err := c.GetLogsV2(project, logstore, &sls.GetLogRequest{From: from, To: to, Query: "*", Lines: 100})
	require.NoError(t, err)
	require.Equal(t, "Complete", all.Progress)
	require.EqualValues(t, 10, all.Count, "every log of every encoding is stored: %v", all.Logs)
	require.Equal(t, "lz4", all.Header.Get(protocol.HeaderCompressType), "the SDK accepts lz4 replies and gets one")
	topics := map[string]int{}
	for _, l := range all.Logs {
		topics[l["__topic__"]]++
		require.NotEmpty(t, l["__time__"])
		require.NotEmpty(t, l["__source__"])
	}
	require.Equal(t, map[string]int{"lz4": 2, "zstd": 1, "none": 1, "route": 2, "": 4}, topics)

	errs, err := c.GetLogsV2(project, logstore, &sls.GetLogRequest{From: from, To: to, Query: "status:500", Lines: 100})
	require.NoError(t, err)
	require.EqualValues(t, 3, errs.Count, "%v", errs.Logs)
	for _, l := range errs.Logs {
		require.Equal(t, "500", l["status"])
	}

	sqlRes, err := c.GetLogsV3(project, logstore, &sls.GetLogRequest{From: from, To: to,
		Query: "* | select status, count(*) as pv group by status order by status"})
	require.NoError(t, err)
	require.True(t, sqlRes.Meta.HasSQL)
	require.Equal(t, "Complete", sqlRes.Meta.Progress)
	got := map[string]string{}
	for _, row := range sqlRes.Logs {
		got[row["status"]] = row["pv"]
	}
	require.Equal(t, map[string]string{"200": "3", "201": "1", "204": "1", "404": "1", "500": "3", "503": "1"}, got)

	hist, err := c.GetHistograms(project, logstore, "", from, to, "status:500")
	require.NoError(t, err)
	require.Equal(t, "Complete", hist.Progress)
	require.EqualValues(t, 3, hist.Count)
	var sum int64
	for _, b := range hist.Histograms {
		sum += b.Count
		require.Equal(t, "Complete", b.Progress)
		require.LessOrEqual(t, b.From, b.To)
	}
	require.EqualValues(t, 3, sum)

	// Legacy GET ?type=log: a JSON array of all-string objects plus headers.
	q := fmt.Sprintf("/logstores/%s?type=log&from=%d&to=%d&query=%s&line=10", logstore, from, to, "method%3APOST")
	resp, body = e.raw("GET", project, q, nil, nil, admin(), time.Now())
	require.Equal(t, 200, resp.StatusCode, string(body))
	require.Equal(t, "Complete", resp.Header.Get(protocol.HeaderProgress))
	require.Equal(t, "1", resp.Header.Get(protocol.HeaderCount))
	var rows []map[string]string
	require.NoError(t, json.Unmarshal(body, &rows), string(body))
	require.Len(t, rows, 1)
	require.Equal(t, "/api/login", rows[0]["path"])

	// SQL that escapes the logstore is refused as a client error.
	for _, escape := range []string{
		"* | select * from read_csv('/etc/passwd')",
		"* | select * from read_text('/etc/passwd')",
		"* | select 1; drop table logs",
		"* | attach '/tmp/evil.db' as evil",
		"* | copy (select 1) to '/tmp/out.csv'",
		"* | select * from duckdb_settings()",
		"* | select getenv('HOME')",
		"* | pragma version",
	} {
		_, err = c.GetLogsV3(project, logstore, &sls.GetLogRequest{From: from, To: to, Query: escape})
		require.Error(t, err, escape)
		var se *sls.Error
		require.True(t, errors.As(err, &se), escape)
		require.Equal(t, int32(400), se.HTTPCode, "%s: %s", escape, se.String())
	}
	still, err := c.GetLogsV2(project, logstore, &sls.GetLogRequest{From: from, To: to, Query: "*", Lines: 100})
	require.NoError(t, err)
	require.EqualValues(t, 10, still.Count, "refused SQL changed nothing")

	// Logstore update and delete.
	ls.TTL = 30
	require.NoError(t, c.UpdateLogStoreV2(project, ls))
	ls, err = c.GetLogStore(project, logstore)
	require.NoError(t, err)
	require.Equal(t, 30, ls.TTL)
	require.NoError(t, c.DeleteLogStore(project, logstore))
	_, err = c.GetLogStore(project, logstore)
	requireSLSError(t, err, 404, "LogStoreNotExist")
	err = c.PutLogs(project, logstore, sdkGroup("", now, []string{"a", "b"}))
	requireSLSError(t, err, 404, "LogStoreNotExist")
	require.NoError(t, c.DeleteProject(project))
	ok, err := c.CheckProjectExist(project)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestMachineGroupsAndConfigs(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project = "ops-team"
	_, err := c.CreateProject(project, "")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore(project, "app-logs", 7, 1, false, 0))

	g := &sls.MachineGroup{Name: "nodes", MachineIDType: "userdefined", MachineIDList: []string{"k8s-node"},
		Attribute: sls.MachinGroupAttribute{TopicName: "t1"}}
	require.NoError(t, c.CreateMachineGroup(project, g))
	err = c.CreateMachineGroup(project, g)
	requireSLSError(t, err, 400, "MachineGroupAlreadyExist")
	got, err := c.GetMachineGroup(project, "nodes")
	require.NoError(t, err)
	require.Equal(t, "userdefined", got.MachineIDType)
	require.Equal(t, []string{"k8s-node"}, got.MachineIDList)
	require.Equal(t, "t1", got.Attribute.TopicName)
	got.MachineIDList = append(got.MachineIDList, "k8s-node-2")
	require.NoError(t, c.UpdateMachineGroup(project, got))
	got, err = c.GetMachineGroup(project, "nodes")
	require.NoError(t, err)
	require.Len(t, got.MachineIDList, 2)
	groups, total, err := c.ListMachineGroup(project, 0, 100)
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.Equal(t, []string{"nodes"}, groups)

	detail := sls.RegexConfigInputDetail{}
	sls.InitRegexConfigInputDetail(&detail)
	detail.LogType = "common_reg_log"
	detail.LogPath = "/var/log/app"
	detail.FilePattern = "*.log"
	detail.Key = []string{"content"}
	cfg := &sls.LogConfig{Name: "app-config", InputType: "file", InputDetail: detail, OutputType: "LogService",
		OutputDetail: sls.OutputDetail{ProjectName: project, LogStoreName: "app-logs"}}
	require.NoError(t, c.CreateConfig(project, cfg))
	back, err := c.GetConfigString(project, "app-config")
	require.NoError(t, err)
	require.Contains(t, back, `"/var/log/app"`)
	require.Contains(t, back, `"createTime"`)
	cfgs, total, err := c.ListConfig(project, 0, 100)
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.Equal(t, []string{"app-config"}, cfgs)

	// A config that logconfig rejects gets a 400 naming the problem.
	bad := &sls.LogConfig{Name: "bad-config", InputType: "file", InputDetail: map[string]any{"logType": "common_reg_log", "regex": "(unclosed", "logPath": "/x", "filePattern": "*.log"},
		OutputType: "LogService", OutputDetail: sls.OutputDetail{ProjectName: project, LogStoreName: "app-logs"}}
	err = c.CreateConfig(project, bad)
	requireSLSError(t, err, 400, "ParameterInvalid")
	require.Contains(t, err.Error(), "regex")

	require.NoError(t, c.ApplyConfigToMachineGroup(project, "app-config", "nodes"))
	applied, err := c.GetAppliedConfigs(project, "nodes")
	require.NoError(t, err)
	require.Equal(t, []string{"app-config"}, applied)
	onGroups, err := c.GetAppliedMachineGroups(project, "app-config")
	require.NoError(t, err)
	require.Equal(t, []string{"nodes"}, onGroups)
	err = c.ApplyConfigToMachineGroup(project, "nope", "nodes")
	requireSLSError(t, err, 404, "ConfigNotExist")
	require.NoError(t, c.RemoveConfigFromMachineGroup(project, "app-config", "nodes"))
	applied, err = c.GetAppliedConfigs(project, "nodes")
	require.NoError(t, err)
	require.Empty(t, applied)

	require.NoError(t, c.DeleteConfig(project, "app-config"))
	_, err = c.GetConfig(project, "app-config")
	requireSLSError(t, err, 404, "ConfigNotExist")
	require.NoError(t, c.DeleteMachineGroup(project, "nodes"))
	_, err = c.GetMachineGroup(project, "nodes")
	requireSLSError(t, err, 404, "MachineGroupNotExist")
}

func TestAuthErrors(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	setupProject(t, c, "proj-a", "logs")

	// Wrong secret: 401 SignatureNotMatch.
	_, err := e.SDK(adminID, "wrong-secret").GetProject("proj-a")
	requireSLSError(t, err, 401, "SignatureNotMatch")
	// Unknown key: the same answer as a wrong secret, so key ids cannot be
	// enumerated.
	_, err = e.SDK("nobody", "x").GetProject("proj-a")
	requireSLSError(t, err, 401, "SignatureNotMatch")

	// Old Date: 400 RequestTimeExpired.
	body := rawGroup(time.Now(), []string{"k", "v"})
	resp, b := e.raw("POST", "proj-a", "/logstores/logs", nil, body, admin(), time.Now().Add(-20*time.Minute))
	requireRawError(t, resp, b, 400, protocol.CodeRequestTimeExpired)
	// v4 with the right key works; with the wrong one it does not.
	v4 := &protocol.Signer{Version: protocol.SignatureV4, Region: "cn-test", Credentials: admin().Credentials}
	resp, b = e.raw("POST", "proj-a", "/logstores/logs", nil, body, v4, time.Now())
	require.Equal(t, 200, resp.StatusCode, string(b))
	v4bad := &protocol.Signer{Version: protocol.SignatureV4, Region: "cn-test", Credentials: protocol.Credentials{AccessKeyID: adminID, AccessKeySecret: "nope"}}
	resp, b = e.raw("POST", "proj-a", "/logstores/logs", nil, body, v4bad, time.Now())
	requireRawError(t, resp, b, 401, protocol.CodeSignatureNotMatch)
	// No signature at all.
	resp, b = e.raw("GET", "proj-a", "/logstores", nil, nil, nil, time.Now())
	requireRawError(t, resp, b, 401, protocol.CodeUnauthorized)

	// A key of project A can neither write nor read project B.
	_, err = c.CreateProject("proj-b", "")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore("proj-b", "logs", 7, 1, false, 0))
	require.NoError(t, e.App.Meta().PutAccessKey(context.Background(), meta.AccessKey{
		ID: "key-a", Secret: "secret-a-0123456789", Projects: map[string]meta.Permission{"proj-a": meta.PermWrite}}))
	ca := e.SDK("key-a", "secret-a-0123456789")
	require.NoError(t, ca.PutLogs("proj-a", "logs", sdkGroup("", time.Now(), []string{"k", "v"})))
	err = ca.PutLogs("proj-b", "logs", sdkGroup("", time.Now(), []string{"k", "v"}))
	requireSLSError(t, err, 401, "Unauthorized")
	_, err = ca.GetLogsV2("proj-b", "logs", &sls.GetLogRequest{From: 0, To: time.Now().Unix() + 60, Query: "*", Lines: 10})
	requireSLSError(t, err, 401, "Unauthorized")
	_, err = ca.GetLogStore("proj-b", "logs")
	requireSLSError(t, err, 401, "Unauthorized")
	err = ca.DeleteLogStore("proj-b", "logs")
	requireSLSError(t, err, 401, "Unauthorized")
	_, err = ca.CreateProject("proj-c", "")
	requireSLSError(t, err, 401, "Unauthorized")
	names, err := ca.ListProject()
	require.NoError(t, err)
	require.Equal(t, []string{"proj-a"}, names, "a project key sees only its projects")
	// A read-only key cannot write.
	require.NoError(t, e.App.Meta().PutAccessKey(context.Background(), meta.AccessKey{
		ID: "key-r", Secret: "secret-r-0123456789", Projects: map[string]meta.Permission{"proj-a": meta.PermRead}}))
	cr := e.SDK("key-r", "secret-r-0123456789")
	_, err = cr.GetLogStore("proj-a", "logs")
	require.NoError(t, err)
	err = cr.PutLogs("proj-a", "logs", sdkGroup("", time.Now(), []string{"k", "v"}))
	requireSLSError(t, err, 401, "Unauthorized")
}

func TestBadBodies(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	setupProject(t, c, "proj-x", "logs")
	put := func(h http.Header, body []byte) (*http.Response, []byte) {
		return e.raw("POST", "proj-x", "/logstores/logs", h, body, admin(), time.Now())
	}

	// Malformed protobuf: 400 PostBodyInvalid.
	resp, b := put(nil, []byte{0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01})
	requireRawError(t, resp, b, 400, protocol.CodePostBodyInvalid)

	// A lying x-log-bodyrawsize (1 TiB) on an lz4 body: refused before any
	// allocation of that size.
	h := http.Header{}
	h.Set(protocol.HeaderCompressType, "lz4")
	h.Set(protocol.HeaderBodyRawSize, strconv.Itoa(1<<40))
	resp, b = put(h, compress(t, rawGroup(time.Now(), []string{"k", "v"}), protocol.CompressLZ4))
	requireRawError(t, resp, b, 400, protocol.CodePostBodyTooLarge)

	// A zstd bomb: 256 MiB of zeros in a few KiB, claiming to be small.
	bomb := compress(t, make([]byte, 256<<20), protocol.CompressZstd)
	require.Less(t, len(bomb), 1<<20)
	dbomb := compress(t, make([]byte, 64<<20), protocol.CompressDeflate)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h = http.Header{}
	h.Set(protocol.HeaderCompressType, "zstd")
	h.Set(protocol.HeaderBodyRawSize, "1000")
	resp, b = put(h, bomb)
	require.Equal(t, 400, resp.StatusCode, string(b))
	// The same bomb claiming the maximum size stops at the 10 MiB limit.
	h.Set(protocol.HeaderBodyRawSize, strconv.Itoa(protocol.MaxRawBodySize))
	resp, b = put(h, bomb)
	require.Equal(t, 400, resp.StatusCode, string(b))
	require.Contains(t, []protocol.ErrorCode{protocol.CodePostBodyTooLarge, protocol.CodeInvalidBodyRawSize}, protocolCode(t, b))
	// A deflate bomb in a batch_group package, no size claimed.
	pl := protocol.SlsLogPackageList{Packages: []protocol.SlsLogPackage{{Data: dbomb, CompressType: protocol.CompressDeflate, HasCompressType: true}}}
	h = http.Header{}
	h.Set(protocol.HeaderMode, protocol.ModeBatchGroup)
	resp, b = put(h, protocol.AppendSlsLogPackageList(nil, &pl))
	requireRawError(t, resp, b, 400, protocol.CodePostBodyTooLarge)
	runtime.ReadMemStats(&after)
	// Server and client together allocated far less than the 320 MiB the
	// bombs expand to: decompression stops at the limit.
	t.Logf("allocated %.1f MiB serving three bombs", float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(80<<20), "bytes allocated while serving three bombs")

	// Unknown compression.
	h = http.Header{}
	h.Set(protocol.HeaderCompressType, "brotli")
	resp, b = put(h, []byte("x"))
	requireRawError(t, resp, b, 400, protocol.CodeInvalidCompressType)
	// Corrupt lz4.
	h = http.Header{}
	h.Set(protocol.HeaderCompressType, "lz4")
	h.Set(protocol.HeaderBodyRawSize, "100")
	resp, b = put(h, []byte{0xff, 0xff, 0xff, 0xff})
	require.Equal(t, 400, resp.StatusCode, string(b))

	// Body over the request limit.
	resp, b = put(nil, make([]byte, protocol.MaxRawBodySize+2<<20))
	requireRawError(t, resp, b, 400, protocol.CodePostBodyTooLarge)

	// Nothing of the above was stored.
	res, err := c.GetLogsV2("proj-x", "logs", &sls.GetLogRequest{From: 0, To: time.Now().Unix() + 60, Query: "*", Lines: 10})
	require.NoError(t, err)
	require.EqualValues(t, 0, res.Count)

	// Missing project and unknown paths are client errors.
	resp, b = e.raw("GET", "", "/logstores", nil, nil, admin(), time.Now())
	requireRawError(t, resp, b, 400, protocol.CodeInvalidHost)
	resp, b = e.raw("GET", "proj-x", "/nothing/here", nil, nil, admin(), time.Now())
	require.Equal(t, 404, resp.StatusCode, string(b))
	resp, b = e.raw("GET", "nope-project", "/logstores", nil, nil, admin(), time.Now())
	requireRawError(t, resp, b, 404, protocol.CodeProjectNotExist)
	// x-log-project overrides the host.
	h = http.Header{}
	h.Set(protocol.HeaderProject, "proj-x")
	resp, b = e.raw("GET", "", "/logstores", h, nil, admin(), time.Now())
	require.Equal(t, 200, resp.StatusCode, string(b))
	require.JSONEq(t, `{"count":1,"total":1,"logstores":["logs"]}`, string(b))

	// GetLogs on a logstore without an index.
	require.NoError(t, c.CreateLogStore("proj-x", "no-index", 7, 1, false, 0))
	_, err = c.GetLogsV2("proj-x", "no-index", &sls.GetLogRequest{From: 0, To: 10, Query: "*", Lines: 10})
	requireSLSError(t, err, 404, "IndexConfigNotExist")
	err = c.CreateLogStore("proj-x", "no-index", 7, 1, false, 0)
	requireSLSError(t, err, 400, "LogStoreAlreadyExist")
	err = c.CreateLogStore("proj-x", "Bad Name", 7, 1, false, 0)
	requireSLSError(t, err, 400, "ParameterInvalid")
}

func protocolCode(t *testing.T, body []byte) protocol.ErrorCode {
	t.Helper()
	var e protocol.Error
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	return e.Code
}

func TestHealthAndMetrics(t *testing.T) {
	e := start(t)
	resp, b := e.raw("GET", "", "/healthz", nil, nil, nil, time.Now())
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "ok\n", string(b))
	_, err := e.SDK(adminID, adminSecret).ListProject()
	require.NoError(t, err)
	resp, b = e.raw("GET", "", "/metrics", nil, nil, nil, time.Now())
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(b), `sluice_api_requests_total{api="ListProject",code=""} 1`)
	require.True(t, strings.Contains(string(b), "go_goroutines"))
}

func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	cfg := app.Config{Listen: "127.0.0.1:0", DataDir: dir, BaseDomain: baseDomain}
	srv, err := app.New(cfg, app.Settings{})
	require.NoError(t, err)
	k := srv.AdminKey()
	require.True(t, k.Admin)
	require.NoError(t, srv.Shutdown(context.Background()))
	require.NoError(t, srv.Shutdown(context.Background()), "Shutdown is idempotent")

	srv, err = app.New(cfg, app.Settings{})
	require.NoError(t, err)
	defer func() { require.NoError(t, srv.Shutdown(context.Background())) }()
	require.Equal(t, k.ID, srv.AdminKey().ID, "the generated admin key survives a restart")
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	// LoongCollector style: HTTPS with certificate checks off.
	srv := apptest.Start(t, apptest.Options{Config: app.Config{DataDir: dir, TLSCert: certFile, TLSKey: keyFile}})
	c := srv.AdminSDK()
	_, err := c.CreateProject("tls-proj", "")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore("tls-proj", "logs", 1, 1, false, 0))
	require.NoError(t, c.PutLogs("tls-proj", "logs", sdkGroup("", time.Now(), []string{"k", "v"})))

	// Plain HTTP to the TLS port fails.
	resp, err := http.Get("http://" + srv.Addr() + "/healthz")
	if err == nil {
		resp.Body.Close()
		require.NotEqual(t, 200, resp.StatusCode)
	}
}

func writeSelfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: baseDomain},
		DNSNames:  []string{baseDomain, "*." + baseDomain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile
}

func TestIndexLifecycle(t *testing.T) {
	e := start(t)
	c := e.SDK(adminID, adminSecret)
	const project, logstore = "idx-proj", "events"
	_, err := c.CreateProject(project, "")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore(project, logstore, 7, 1, false, 0))
	_, err = c.GetIndex(project, logstore)
	requireSLSError(t, err, 404, "IndexConfigNotExist")

	now := time.Now()
	require.NoError(t, c.PutLogs(project, logstore, sdkGroup("", now,
		[]string{"level", "error", "latency", "120"}, []string{"level", "info", "latency", "7"})))

	line := sls.Index{Line: &sls.IndexLine{Token: []string{" "}}}
	require.NoError(t, c.CreateIndex(project, logstore, line))
	err = c.CreateIndex(project, logstore, line)
	requireSLSError(t, err, 400, "IndexAlreadyExist")
	err = c.CreateIndex(project, logstore, sls.Index{Keys: map[string]sls.IndexKey{"x": {Type: "blob"}}})
	requireSLSError(t, err, 400, "ParameterInvalid")
	err = c.UpdateIndex(project, logstore, sls.Index{Keys: map[string]sls.IndexKey{"Level": {Type: "text"}, "level": {Type: "long"}}})
	requireSLSError(t, err, 400, "ParameterInvalid")

	from, to := now.Add(-time.Hour).Unix(), now.Add(time.Hour).Unix()
	res, err := c.GetLogsV2(project, logstore, &sls.GetLogRequest{From: from, To: to, Query: "error", Lines: 10})
	require.NoError(t, err)
	require.EqualValues(t, 1, res.Count, "full-text search on the line index")

	// Adding typed keys makes them usable in SQL.
	require.NoError(t, c.UpdateIndex(project, logstore, sls.Index{
		Line: &sls.IndexLine{Token: []string{" "}},
		Keys: map[string]sls.IndexKey{"latency": {Type: "long", DocValue: true}, "level": {Type: "text", DocValue: true, Token: []string{" "}}},
	}))
	idx, err := c.GetIndex(project, logstore)
	require.NoError(t, err)
	require.Equal(t, "long", idx.Keys["latency"].Type)
	require.NoError(t, c.PutLogs(project, logstore, sdkGroup("", now, []string{"level", "error", "latency", "300"})))
	v3, err := c.GetLogsV3(project, logstore, &sls.GetLogRequest{From: from, To: to,
		Query: "level:error | select max(latency) as worst"})
	require.NoError(t, err)
	require.Len(t, v3.Logs, 1)
	require.Equal(t, "300", v3.Logs[0]["worst"])

	require.NoError(t, c.DeleteIndex(project, logstore))
	_, err = c.GetIndex(project, logstore)
	requireSLSError(t, err, 404, "IndexConfigNotExist")
	_, err = c.GetLogsV2(project, logstore, &sls.GetLogRequest{From: from, To: to, Query: "*", Lines: 10})
	requireSLSError(t, err, 404, "IndexConfigNotExist")
}
