package auth_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/auth"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/meta/jsonfile"
)

func newKeys(t *testing.T) *jsonfile.Store {
	t.Helper()
	s, err := jsonfile.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// sdkRequest builds the request the Go SDK would send, signed by the SDK's
// own signer (v1 or v4).
func sdkRequest(t *testing.T, signer sls.Signer, method, uri string, body []byte, date time.Time, v4 bool) *http.Request {
	t.Helper()
	h := map[string]string{
		"x-log-apiversion":  "0.6.0",
		"x-log-bodyrawsize": "0",
		"Host":              "proj.sluice.test:8080",
	}
	if body != nil {
		h["Content-Type"] = "application/x-protobuf"
	}
	if v4 {
		h["x-log-date"] = date.UTC().Format("20060102T150405Z")
	} else {
		h["Date"] = date.UTC().Format(http.TimeFormat)
	}
	require.NoError(t, signer.Sign(method, uri, h, body))
	r, err := http.NewRequest(method, "http://proj.sluice.test:8080"+uri, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return r
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	keys := newKeys(t)
	require.NoError(t, keys.PutAccessKey(ctx, meta.AccessKey{ID: "ak", Secret: "good-secret", Projects: map[string]meta.Permission{"proj": meta.PermWrite}}))
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	a := auth.New(keys, auth.Options{Now: func() time.Time { return now }})
	body := []byte("compressed body bytes")
	uri := "/logstores/ls/shards/lb?key=a%20b&seqid=3"

	cases := []struct {
		name   string
		signer sls.Signer
		v4     bool
		date   time.Time
		code   protocol.ErrorCode
		status int
	}{
		{"v1 ok", sls.NewSignerV1("ak", "good-secret"), false, now, "", 200},
		{"v4 ok", sls.NewSignerV4("ak", "good-secret", "cn-test"), true, now, "", 200},
		{"v1 wrong secret", sls.NewSignerV1("ak", "bad"), false, now, protocol.CodeSignatureNotMatch, 401},
		{"v4 wrong secret", sls.NewSignerV4("ak", "bad", "cn-test"), true, now, protocol.CodeSignatureNotMatch, 401},
		{"unknown key (answered as a wrong secret)", sls.NewSignerV1("nobody", "x"), false, now, protocol.CodeSignatureNotMatch, 401},
		{"unknown key v4", sls.NewSignerV4("nobody", "x", "cn-test"), true, now, protocol.CodeSignatureNotMatch, 401},
		{"v1 old date", sls.NewSignerV1("ak", "good-secret"), false, now.Add(-16 * time.Minute), protocol.CodeRequestTimeExpired, 400},
		{"v4 future date", sls.NewSignerV4("ak", "good-secret", "cn-test"), true, now.Add(16 * time.Minute), protocol.CodeRequestTimeExpired, 400},
		{"v1 skew within limit", sls.NewSignerV1("ak", "good-secret"), false, now.Add(14 * time.Minute), "", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := sdkRequest(t, tc.signer, "POST", uri, body, tc.date, tc.v4)
			k, err := a.Authenticate(r, body)
			if tc.code == "" {
				require.NoError(t, err)
				require.Equal(t, "ak", k.ID)
				return
			}
			e := protocol.AsError(err)
			require.NotNil(t, e)
			require.Equal(t, tc.code, e.Code, e.Message)
			require.Equal(t, tc.status, e.HTTPStatus)
		})
	}

	t.Run("body altered after signing", func(t *testing.T) {
		r := sdkRequest(t, sls.NewSignerV1("ak", "good-secret"), "POST", uri, body, now, false)
		_, err := a.Authenticate(r, []byte("other body"))
		require.Equal(t, protocol.CodeSignatureNotMatch, protocol.CodeOf(err))
	})
	t.Run("no authorization", func(t *testing.T) {
		r, _ := http.NewRequest("GET", "http://x/", nil)
		_, err := a.Authenticate(r, nil)
		require.Equal(t, protocol.CodeUnauthorized, protocol.CodeOf(err))
	})
	t.Run("x-log-date added after v1 signing is ignored", func(t *testing.T) {
		// The Python SDK adds x-log-date after computing a v1 signature.
		r := sdkRequest(t, sls.NewSignerV1("ak", "good-secret"), "GET", "/logstores", nil, now, false)
		r.Header.Set("x-log-date", "20260506T070809Z")
		_, err := a.Authenticate(r, nil)
		require.NoError(t, err)
	})
}

func TestAuthorize(t *testing.T) {
	k := meta.AccessKey{ID: "a", Projects: map[string]meta.Permission{"a": meta.PermWrite, "r": meta.PermRead}}
	require.NoError(t, auth.Authorize(k, "a", meta.PermWrite))
	require.NoError(t, auth.Authorize(k, "r", meta.PermRead))
	for _, c := range []struct {
		project string
		perm    meta.Permission
	}{{"b", meta.PermRead}, {"b", meta.PermWrite}, {"r", meta.PermWrite}, {"", meta.PermRead}} {
		err := auth.Authorize(k, c.project, c.perm)
		require.Equal(t, protocol.CodeUnauthorized, protocol.CodeOf(err), "%+v", c)
		require.Equal(t, 401, protocol.AsError(err).HTTPStatus)
	}
	require.NoError(t, auth.Authorize(meta.AccessKey{Admin: true}, "", meta.PermWrite))
}

func TestBootstrapGenerates(t *testing.T) {
	ctx := context.Background()
	keys := newKeys(t)
	file := filepath.Join(t.TempDir(), "admin-key.json")
	k, err := auth.Bootstrap(ctx, keys, auth.BootstrapConfig{GeneratedFile: file})
	require.NoError(t, err)
	require.True(t, k.Admin)
	fi, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	kf, err := auth.ReadKeyFile(file)
	require.NoError(t, err)
	require.Equal(t, k.ID, kf.AccessKeyID)
	require.Equal(t, k.Secret, kf.AccessKeySecret)

	// Second start: same key, file untouched.
	k2, err := auth.Bootstrap(ctx, keys, auth.BootstrapConfig{GeneratedFile: file})
	require.NoError(t, err)
	require.Equal(t, k.ID, k2.ID)

	// Metadata reset but file kept: the operator's credentials still work.
	keys2 := newKeys(t)
	k3, err := auth.Bootstrap(ctx, keys2, auth.BootstrapConfig{GeneratedFile: file})
	require.NoError(t, err)
	require.Equal(t, k.ID, k3.ID)
	require.Equal(t, k.Secret, k3.Secret)
}

func TestBootstrapConfigured(t *testing.T) {
	ctx := context.Background()
	keys := newKeys(t)
	s1, s2 := "first-secret-0123456789", "second-secret-0123456789"
	k, err := auth.Bootstrap(ctx, keys, auth.BootstrapConfig{ID: "admin", Secret: s1})
	require.NoError(t, err)
	require.Equal(t, "admin", k.ID)
	// A new secret for the same id replaces the old one.
	_, err = auth.Bootstrap(ctx, keys, auth.BootstrapConfig{ID: "admin", Secret: s2})
	require.NoError(t, err)
	got, err := keys.GetAccessKey(ctx, "admin")
	require.NoError(t, err)
	require.Equal(t, s2, got.Secret)

	// A configured secret is held to the minimum length, from flags or a file.
	_, err = auth.Bootstrap(ctx, keys, auth.BootstrapConfig{ID: "admin", Secret: "short-secret"})
	require.ErrorContains(t, err, `the secret of "admin" is 12 characters; at least 16 are required`)
	short := filepath.Join(t.TempDir(), "short.json")
	require.NoError(t, auth.WriteKeyFile(short, auth.KeyFile{AccessKeyID: "admin", AccessKeySecret: "tiny"}))
	_, err = auth.Bootstrap(ctx, keys, auth.BootstrapConfig{File: short})
	require.ErrorContains(t, err, "at least 16 are required")

	_, err = auth.Bootstrap(ctx, keys, auth.BootstrapConfig{ID: "only-id"})
	require.ErrorContains(t, err, "both")

	require.NoError(t, keys.PutAccessKey(ctx, meta.AccessKey{ID: "user", Secret: "x"}))
	_, err = auth.Bootstrap(ctx, keys, auth.BootstrapConfig{ID: "user", Secret: s1})
	require.ErrorContains(t, err, "not an admin key")

	file := filepath.Join(t.TempDir(), "k.json")
	require.NoError(t, auth.WriteKeyFile(file, auth.KeyFile{AccessKeyID: "fromfile", AccessKeySecret: "file-secret-0123456789"}))
	k, err = auth.Bootstrap(ctx, keys, auth.BootstrapConfig{File: file})
	require.NoError(t, err)
	require.Equal(t, "fromfile", k.ID)
	require.True(t, k.Admin)
}

func TestNewKeyIsRandom(t *testing.T) {
	id1, s1, err := auth.NewKey()
	require.NoError(t, err)
	id2, s2, err := auth.NewKey()
	require.NoError(t, err)
	require.NotEqual(t, id1, id2)
	require.NotEqual(t, s1, s2)
	require.Len(t, id1, 24)
	require.Len(t, s1, 32)
}
