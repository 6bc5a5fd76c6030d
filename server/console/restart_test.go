package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/app"
	"github.com/sluicelog/sluice/server/app/apptest"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/meta/jsonfile"
)

// restart stops e's server and starts a new one on the same address and
// data dir (an upgrade), returning it; the browsers made before keep their
// cookies and reach the new server.
func (e *env) restart(whileDown func(m *jsonfile.Store)) *env {
	e.t.Helper()
	e.Stop()
	if whileDown != nil {
		// What an operator (or the clock) changes while the server is
		// down, written to the same metadata file the server reads.
		m, err := jsonfile.Open(filepath.Join(e.DataDir(), "meta"))
		require.NoError(e.t, err)
		whileDown(m)
		require.NoError(e.t, m.Close())
	}
	srv := apptest.Start(e.t, apptest.Options{Config: app.Config{Listen: e.Addr(), DataDir: e.DataDir()}})
	return &env{Server: srv, t: e.t, base: srv.URL()}
}

func (b *browser) cookie() string {
	b.t.Helper()
	u, err := url.Parse(b.e.base + "/console/api/session")
	require.NoError(b.t, err)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "sluice_console" {
			return c.Value
		}
	}
	return ""
}

// The user-visible promise: upgrading or restarting sluice-server signs no
// one out, and everything that ends a session still does, also while the
// server is down.
func TestSessionSurvivesRestart(t *testing.T) {
	e := start(t)
	b := e.browser()
	st, _ := b.signIn(adminID, adminSecret)
	require.Equal(t, http.StatusOK, st)
	cookie, csrf := b.cookie(), b.csrf
	require.NotEmpty(t, cookie)

	// What is stored: neither the cookie value nor the key's secret.
	stored, err := e.App.Meta().ListConsoleSessions(context.Background())
	require.NoError(t, err)
	require.Len(t, stored, 1)
	raw, err := json.Marshal(stored)
	require.NoError(t, err)
	require.NotContains(t, string(raw), cookie)
	require.NotContains(t, string(raw), adminSecret)

	e = e.restart(nil)
	b.e = e
	st, out, _ := b.do("GET", "/console/api/session", nil, nil)
	require.Equal(t, http.StatusOK, st, "the cookie from before the restart still works: %v", out)
	require.Equal(t, adminID, out["accessKeyId"])
	require.Equal(t, csrf, out["csrfToken"], "the page's CSRF token stays valid")
	require.Equal(t, cookie, b.cookie())

	// The CSRF token is still required after the restart.
	b.csrf = ""
	st, out, _ = b.do("POST", "/console/api/sls/web/", map[string]string{"projectName": "web"}, nil)
	require.Equal(t, http.StatusForbidden, st)
	require.Equal(t, "CSRFTokenInvalid", out["errorCode"])
	st, _, _ = b.do("POST", "/console/api/sls/web/", map[string]string{"projectName": "web"}, map[string]string{"X-Sluice-CSRF": "guess"})
	require.Equal(t, http.StatusForbidden, st)
	b.csrf = csrf
	st, out, _ = b.do("POST", "/console/api/sls/web/", map[string]string{"projectName": "web"}, nil)
	require.Equal(t, http.StatusOK, st, out)
	_, err = e.App.Meta().GetProject(context.Background(), "web")
	require.NoError(t, err)

	// Signed out, then restarted: the old cookie is refused.
	st, _, _ = b.do("DELETE", "/console/api/session", nil, nil)
	require.Equal(t, http.StatusOK, st)
	stored, err = e.App.Meta().ListConsoleSessions(context.Background())
	require.NoError(t, err)
	require.Empty(t, stored, "sign-out deletes the stored session")
	e = e.restart(nil)
	b.e = e
	replay := e.browser()
	replay.csrf = csrf
	u, err := url.Parse(e.base + "/console/")
	require.NoError(t, err)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "sluice_console", Value: cookie, Path: "/console"}})
	st, out, _ = replay.do("GET", "/console/api/session", nil, nil)
	require.Equal(t, http.StatusUnauthorized, st, "a signed-out cookie stays dead across a restart")
	require.Equal(t, "SessionExpired", out["errorCode"])
}

func TestSessionEndsWhileDown(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	for _, id := range []string{"deleted", "rotated"} {
		require.NoError(t, e.App.Meta().PutAccessKey(ctx, meta.AccessKey{ID: id, Secret: id + "-secret-0123456789", Admin: true, CreateTime: time.Now()}))
	}
	signIn := func(id, secret string) *browser {
		b := e.browser()
		st, out := b.signIn(id, secret)
		require.Equal(t, http.StatusOK, st, out)
		return b
	}
	deleted := signIn("deleted", "deleted-secret-0123456789")
	rotated := signIn("rotated", "rotated-secret-0123456789")
	idle := signIn(adminID, adminSecret)
	old := signIn(adminID, adminSecret)
	kept := signIn(adminID, adminSecret)
	byCSRF := func(m meta.Store, csrf string) meta.ConsoleSession {
		all, err := m.ListConsoleSessions(ctx)
		require.NoError(t, err)
		for _, cs := range all {
			if cs.CSRFToken == csrf {
				return cs
			}
		}
		require.FailNow(t, "no stored session with the browser's CSRF token")
		return meta.ConsoleSession{}
	}

	e = e.restart(func(m *jsonfile.Store) {
		require.NoError(t, m.DeleteAccessKey(ctx, "deleted"))
		require.NoError(t, m.PutAccessKey(ctx, meta.AccessKey{ID: "rotated", Secret: "new-secret-0123456789", Admin: true}))
		// Nine hours pass for two sessions: one idle past the 8 h limit,
		// one (used recently) past the 24 h one.
		cs := byCSRF(m, idle.csrf)
		cs.Created, cs.LastUsed = cs.Created.Add(-9*time.Hour), cs.LastUsed.Add(-9*time.Hour)
		require.NoError(t, m.PutConsoleSession(ctx, cs))
		cs = byCSRF(m, old.csrf)
		cs.Created = cs.Created.Add(-25 * time.Hour)
		require.NoError(t, m.PutConsoleSession(ctx, cs))
	})
	for name, b := range map[string]*browser{"deleted key": deleted, "rotated key": rotated, "idle": idle, "too old": old} {
		b.e = e
		st, out, _ := b.do("GET", "/console/api/sls/_/", nil, nil)
		require.Equal(t, http.StatusUnauthorized, st, name)
		require.Equal(t, "SessionExpired", out["errorCode"], name)
	}
	kept.e = e
	st, out, _ := kept.do("GET", "/console/api/sls/_/", nil, nil)
	require.Equal(t, http.StatusOK, st, "the untouched session lives on: %v", out)
	stored, err := e.App.Meta().ListConsoleSessions(ctx)
	require.NoError(t, err)
	require.Len(t, stored, 1, "refused sessions are deleted from the store")
	require.Equal(t, kept.csrf, stored[0].CSRFToken)
}
