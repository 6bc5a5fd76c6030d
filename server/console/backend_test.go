package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/meta"
)

// browser is a cookie-keeping HTTP client that behaves like the console
// page: JSON bodies and the CSRF header from the session.
type browser struct {
	t    testing.TB
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	return &browser{t: e.t, e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (b *browser) do(method, path string, body any, hdr map[string]string) (int, map[string]any, http.Header) {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		switch v := body.(type) {
		case string:
			rd = strings.NewReader(v)
		default:
			raw, err := json.Marshal(v)
			require.NoError(b.t, err)
			rd = bytes.NewReader(raw)
		}
	}
	r, err := http.NewRequest(method, b.e.base+path, rd)
	require.NoError(b.t, err)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if b.csrf != "" {
		r.Header.Set("X-Sluice-CSRF", b.csrf)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := b.c.Do(r)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		require.NoError(b.t, json.Unmarshal(raw, &out), string(raw))
	}
	return resp.StatusCode, out, resp.Header
}

func (b *browser) signIn(id, secret string) (int, map[string]any) {
	b.t.Helper()
	st, out, _ := b.do("POST", "/console/api/session", map[string]string{"accessKeyId": id, "accessKeySecret": secret},
		map[string]string{"X-Sluice-CSRF": "signin"})
	if st == http.StatusOK {
		b.csrf = out["csrfToken"].(string)
	}
	return st, out
}

func TestSignInSessionCookie(t *testing.T) {
	e := start(t)
	b := e.browser()

	st, out := b.signIn(adminID, "wrong-secret")
	require.Equal(t, http.StatusUnauthorized, st)
	require.Contains(t, out["errorMessage"], "access key id or secret is wrong")
	st, out = b.signIn("no-such-key", adminSecret)
	require.Equal(t, http.StatusUnauthorized, st, "unknown ids get the same answer as wrong secrets")
	require.Contains(t, out["errorMessage"], "access key id or secret is wrong")

	// The session cookie: HttpOnly, SameSite=Strict, scoped to /console,
	// and its value is not the key.
	r, err := http.NewRequest("POST", e.base+"/console/api/session", strings.NewReader(`{"accessKeyId":"admin","accessKeySecret":"`+adminSecret+`"}`))
	require.NoError(t, err)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Sluice-CSRF", "signin")
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, string(body), adminSecret, "the secret never goes back to the page")
	sc := resp.Header.Get("Set-Cookie")
	require.Contains(t, sc, "HttpOnly")
	require.Contains(t, sc, "SameSite=Strict")
	require.Contains(t, sc, "Path=/console")
	require.NotContains(t, sc, adminSecret)
	require.NotContains(t, sc, adminID+"=")

	r, err = http.NewRequest("POST", e.base+"/console/api/session", strings.NewReader(`{"accessKeyId":"admin","accessKeySecret":"`+adminSecret+`"}`))
	require.NoError(t, err)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Sluice-CSRF", "signin")
	r.Header.Set("X-Forwarded-Proto", "https")
	resp, err = http.DefaultClient.Do(r)
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, resp.Header.Get("Set-Cookie"), "; Secure", "behind a TLS-terminating proxy the cookie is Secure")
	require.NotContains(t, sc, "Secure", "plain HTTP on localhost: a Secure cookie would not be sent back")

	st, out = b.signIn(adminID, adminSecret)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, true, out["admin"])
	st, out, _ = b.do("GET", "/console/api/session", nil, nil)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, adminID, out["accessKeyId"])

	// Sign out ends the session server-side.
	st, _, _ = b.do("DELETE", "/console/api/session", nil, nil)
	require.Equal(t, http.StatusOK, st)
	st, out, _ = b.do("GET", "/console/api/sls/_/", nil, nil)
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, "SessionExpired", out["errorCode"])
}

func TestSignInNeedsScriptHeaders(t *testing.T) {
	e := start(t)
	b := e.browser()
	// What a cross-site HTML form can send: no custom header, form type.
	st, out, _ := b.do("POST", "/console/api/session", "accessKeyId=admin&accessKeySecret="+adminSecret,
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	require.Equal(t, http.StatusForbidden, st)
	require.Equal(t, "CSRFTokenInvalid", out["errorCode"])
}

func TestCSRFAndOrigin(t *testing.T) {
	e := start(t)
	b := e.browser()
	st, _ := b.signIn(adminID, adminSecret)
	require.Equal(t, http.StatusOK, st)

	token := b.csrf
	b.csrf = ""
	st, out, _ := b.do("POST", "/console/api/sls/web/", map[string]string{"projectName": "web"}, nil)
	require.Equal(t, http.StatusForbidden, st, "a mutating request without the CSRF header is refused")
	require.Equal(t, "CSRFTokenInvalid", out["errorCode"])
	st, _, _ = b.do("POST", "/console/api/sls/web/", map[string]string{"projectName": "web"}, map[string]string{"X-Sluice-CSRF": "guess"})
	require.Equal(t, http.StatusForbidden, st)
	_, err := e.App.Meta().GetProject(context.Background(), "web")
	require.ErrorIs(t, err, meta.ErrNotFound, "refused requests change nothing")

	b.csrf = token
	st, _, _ = b.do("POST", "/console/api/sls/web/", map[string]string{"projectName": "web"}, map[string]string{"Origin": "http://evil.example"})
	require.Equal(t, http.StatusForbidden, st, "another origin is refused even with the token")
	st, _, _ = b.do("POST", "/console/api/sls/web/", map[string]string{"projectName": "web"}, map[string]string{"Origin": e.base})
	require.Equal(t, http.StatusOK, st)
	_, err = e.App.Meta().GetProject(context.Background(), "web")
	require.NoError(t, err)
}

// The console has exactly the signed-in key's permissions: the API
// decides, with its own errors.
func TestProxyUsesTheKeysPermissions(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	adm := e.SDK(adminID, adminSecret)
	for _, p := range []string{"web", "ops"} {
		_, err := adm.CreateProject(p, "")
		require.NoError(t, err)
	}
	require.NoError(t, e.App.Meta().PutAccessKey(ctx, meta.AccessKey{ID: "reader", Secret: "reader-secret-0123456789",
		Projects: map[string]meta.Permission{"web": meta.PermRead}, CreateTime: time.Now()}))

	b := e.browser()
	st, out := b.signIn("reader", "reader-secret-0123456789")
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, false, out["admin"])
	require.Equal(t, []any{map[string]any{"name": "web", "permission": "read"}}, out["projects"])

	st, out, _ = b.do("GET", "/console/api/sls/web/logstores", nil, nil)
	require.Equal(t, http.StatusOK, st)
	require.EqualValues(t, 0, out["total"])
	st, out, _ = b.do("POST", "/console/api/sls/web/logstores", map[string]any{"logstoreName": "access", "ttl": 7, "shardCount": 1}, nil)
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, "Unauthorized", out["errorCode"])
	require.Contains(t, out["errorMessage"], "no write permission")
	st, _, _ = b.do("GET", "/console/api/sls/ops/logstores", nil, nil)
	require.Equal(t, http.StatusUnauthorized, st)
	st, out, _ = b.do("GET", "/console/api/sls/_/", nil, nil)
	require.Equal(t, http.StatusOK, st)
	require.EqualValues(t, 1, out["total"], "ListProject shows only the key's projects")

	// A rotated secret ends the session at the next request.
	require.NoError(t, e.App.Meta().PutAccessKey(ctx, meta.AccessKey{ID: "reader", Secret: "rotated-secret-0123456789",
		Projects: map[string]meta.Permission{"web": meta.PermRead}, CreateTime: time.Now()}))
	st, out, _ = b.do("GET", "/console/api/sls/web/logstores", nil, nil)
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, "SessionExpired", out["errorCode"])
}

func TestCheckQueryPositions(t *testing.T) {
	e := start(t)
	b := e.browser()
	b.signIn(adminID, adminSecret)
	check := func(q string) map[string]any {
		st, out, _ := b.do("POST", "/console/api/check-query", map[string]string{"query": q, "logstore": "access"}, nil)
		require.Equal(t, http.StatusOK, st)
		return out
	}
	out := check("status:500 and path:/api")
	require.Equal(t, true, out["ok"])
	require.Equal(t, false, out["hasSQL"])

	out = check("status:500 and (GET")
	require.Equal(t, false, out["ok"])
	require.EqualValues(t, len("status:500 and (GET"), out["pos"])
	require.Contains(t, out["message"], `")"`)

	// Positions are bytes for the server and UTF-16 units for the page.
	q := `msg:"héllo 😀" and (`
	out = check(q)
	require.Equal(t, false, out["ok"])
	require.EqualValues(t, len(q), out["pos"])
	require.EqualValues(t, len([]rune(q))+1, out["offset"], "the emoji is two UTF-16 units")

	out = check("status:500 | select status, count(*) as n group by status")
	require.Equal(t, true, out["ok"])
	require.Equal(t, true, out["hasSQL"])
	require.Equal(t, "status:500", out["search"])

	out = check("* | select * from read_csv('/etc/passwd')")
	require.Equal(t, false, out["ok"])
	require.Greater(t, out["pos"].(float64), float64(len("* | ")), "SQL errors point into the SQL part")
}

func TestValidateConfigPaths(t *testing.T) {
	e := start(t)
	e.setup("web", "app")
	b := e.browser()
	b.signIn(adminID, adminSecret)
	bad := `{"configName":"app","inputType":"file","inputDetail":{"logType":"common_reg_log","logPath":"/var/log/app","filePattern":"*.log","regex":"(.*","key":["content"]},"outputType":"LogService","outputDetail":{"projectName":"web","logstoreName":"app"}}`
	st, out, _ := b.do("POST", "/console/api/validate-config", bad, nil)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, false, out["ok"])
	errs := out["errors"].([]any)
	require.Len(t, errs, 1)
	first := errs[0].(map[string]any)
	require.Equal(t, "inputDetail.regex", first["path"])
	require.Equal(t, "app", first["config"])
	require.Contains(t, first["message"], "closing )")

	good := strings.Replace(bad, `"(.*"`, `"(.*)"`, 1)
	st, out, _ = b.do("POST", "/console/api/validate-config", good, nil)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, true, out["ok"], out)

	// The target is looked up with the session's key.
	for path, cfg := range map[string]string{
		"outputDetail.logstoreName": strings.Replace(good, `"logstoreName":"app"`, `"logstoreName":"nosuch"`, 1),
		"outputDetail.projectName":  strings.Replace(good, `"projectName":"web"`, `"projectName":"nosuch"`, 1),
	} {
		st, out, _ = b.do("POST", "/console/api/validate-config", cfg, nil)
		require.Equal(t, http.StatusOK, st)
		require.Equal(t, false, out["ok"], out)
		require.Equal(t, path, out["errors"].([]any)[0].(map[string]any)["path"])
		require.Contains(t, out["errors"].([]any)[0].(map[string]any)["message"], `"nosuch" does not exist`)
	}

	st, out, _ = b.do("POST", "/console/api/validate-config", `{"configName": "x",`, nil)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, false, out["ok"])
	require.Contains(t, out["errors"].([]any)[0].(map[string]any)["message"], "invalid JSON at byte")
}

func TestAssetsAndHeaders(t *testing.T) {
	e := start(t)
	resp, err := http.Get(e.base + "/console/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `<script type="module" src="app.js">`)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)

	r, _ := http.NewRequest("GET", e.base+"/console/", nil)
	r.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(r)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotModified, resp.StatusCode)

	for _, p := range []string{"app.js", "search.js", "charts.js", "style.css"} {
		resp, err := http.Get(e.base + "/console/" + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
	}
	resp, err = http.Get(e.base + "/console/../../etc/passwd")
	require.NoError(t, err)
	resp.Body.Close()
	require.NotEqual(t, http.StatusOK, resp.StatusCode)

	// The API still answers everything else.
	resp, err = http.Get(e.base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestSignInThrottle(t *testing.T) {
	e := start(t)
	b := e.browser()
	for i := range 10 {
		st, _ := b.signIn(adminID, "guess-"+string(rune('a'+i)))
		require.Equal(t, http.StatusUnauthorized, st)
	}
	st, out := b.signIn(adminID, "guess-k")
	require.Equal(t, http.StatusTooManyRequests, st, "the 11th failure in a row is throttled")
	require.Equal(t, "TooManySignInFailures", out["errorCode"])
	st, _ = b.signIn(adminID, adminSecret)
	require.Equal(t, http.StatusTooManyRequests, st, "even with the right secret, until the budget refills")
	require.Eventually(t, func() bool {
		st, _ := b.signIn(adminID, adminSecret)
		return st == http.StatusOK
	}, 15*time.Second, 500*time.Millisecond, "one more try every 5 s")
}
