package apiclient_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/api"
	"github.com/sluicelog/sluice/server/api/apiclient"
	"github.com/sluicelog/sluice/server/app"
	"github.com/sluicelog/sluice/server/meta"
)

func TestQueryAndKeys(t *testing.T) {
	ctx := context.Background()
	srv, err := app.New(app.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()}, app.Settings{})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer func() { require.NoError(t, srv.Shutdown(ctx)) }()
	adm := srv.AdminKey()
	c, err := apiclient.New(srv.Addr(), protocol.Credentials{AccessKeyID: adm.ID, AccessKeySecret: adm.Secret}, nil)
	require.NoError(t, err)

	_, err = c.Do(ctx, http.MethodPost, "shop", "/", map[string]string{"projectName": "shop"}, nil)
	require.NoError(t, err)
	_, err = c.Do(ctx, http.MethodPost, "shop", "/logstores", map[string]any{"logstoreName": "orders", "ttl": 7, "shardCount": 1}, nil)
	require.NoError(t, err)
	_, err = c.Do(ctx, http.MethodPost, "shop", "/logstores/orders/index", map[string]any{
		"line": map[string]any{"token": []string{" "}},
		"keys": map[string]any{"status": map[string]any{"type": "long", "doc_value": true}},
	}, nil)
	require.NoError(t, err)

	now := time.Now()
	g := protocol.LogGroup{Topic: "t", Logs: []protocol.Log{
		{Time: uint32(now.Unix()), Contents: []protocol.LogContent{{Key: "status", Value: "500"}, {Key: "msg", Value: "boom\tx"}}},
		{Time: uint32(now.Unix()), Contents: []protocol.LogContent{{Key: "status", Value: "200"}, {Key: "msg", Value: "ok"}}},
	}}
	body := protocol.AppendLogGroup(nil, &g)
	r, err := http.NewRequest("POST", "http://"+srv.Addr()+"/logstores/orders", bytes.NewReader(body))
	require.NoError(t, err)
	r.Header.Set(protocol.HeaderProject, "shop")
	r.Header.Set("Content-Type", protocol.ContentTypeProtobuf)
	signer := protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: adm.ID, AccessKeySecret: adm.Secret}}
	require.NoError(t, signer.SignRequest(r, body, now))
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	res, err := c.GetLogs(ctx, "shop", "orders", "status:500", now.Add(-time.Minute), now.Add(time.Minute), 100)
	require.NoError(t, err)
	require.Len(t, res.Rows, 1)
	require.Equal(t, []string{"__time__", "__topic__", "__source__", "msg", "status"}, res.Columns[:5])
	var out bytes.Buffer
	require.NoError(t, apiclient.WriteTable(&out, res))
	require.Contains(t, out.String(), `boom\tx`)
	require.Contains(t, out.String(), now.UTC().Format(time.RFC3339))
	require.Contains(t, out.String(), "(1 rows)")

	res, err = c.GetLogs(ctx, "shop", "orders", "* | select status, count(*) as n group by status order by status", now.Add(-time.Minute), now.Add(time.Minute), 100)
	require.NoError(t, err)
	require.True(t, res.HasSQL)
	require.Equal(t, []string{"status", "n"}, res.Columns)
	require.Equal(t, []map[string]string{{"status": "200", "n": "1"}, {"status": "500", "n": "1"}}, res.Rows)

	// Keys: create a project key, use it, restrict it, delete it.
	id, secret, err := c.CreateKey(ctx, api.KeyRequest{Projects: map[string]meta.Permission{"shop": meta.PermWrite}, Description: "ci"})
	require.NoError(t, err)
	kc, err := apiclient.New(srv.Addr(), protocol.Credentials{AccessKeyID: id, AccessKeySecret: secret}, nil)
	require.NoError(t, err)
	_, err = kc.GetLogs(ctx, "shop", "orders", "*", now.Add(-time.Minute), now.Add(time.Minute), 10)
	require.NoError(t, err)
	_, err = kc.ListKeys(ctx)
	require.Equal(t, protocol.CodeUnauthorized, protocol.CodeOf(err), "a project key cannot manage keys")
	require.NoError(t, c.UpdateKey(ctx, id, api.KeyRequest{Projects: map[string]meta.Permission{"other-proj": meta.PermRead}}))
	_, err = kc.GetLogs(ctx, "shop", "orders", "*", now.Add(-time.Minute), now.Add(time.Minute), 10)
	require.Equal(t, protocol.CodeUnauthorized, protocol.CodeOf(err))
	ks, err := c.ListKeys(ctx)
	require.NoError(t, err)
	require.Len(t, ks, 2)
	require.NoError(t, c.DeleteKey(ctx, id))
	_, err = kc.GetLogs(ctx, "shop", "orders", "*", now.Add(-time.Minute), now.Add(time.Minute), 10)
	require.Equal(t, protocol.CodeSignatureNotMatch, protocol.CodeOf(err), "a deleted key is answered as a wrong secret")
	err = c.DeleteKey(ctx, adm.ID)
	require.Equal(t, protocol.CodeParameterInvalid, protocol.CodeOf(err), "the last admin key cannot be deleted")
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  now,
		"-15m":                 now.Add(-15 * time.Minute),
		"-2h":                  now.Add(-2 * time.Hour),
		"-7d":                  now.AddDate(0, 0, -7),
		"1700000000":           time.Unix(1700000000, 0),
		"2026-01-02T03:04:05Z": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	} {
		got, err := apiclient.ParseTime(in, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: %v != %v", in, got, want)
	}
	_, err := apiclient.ParseTime("yesterday", now)
	require.ErrorContains(t, err, "-15m")
}
