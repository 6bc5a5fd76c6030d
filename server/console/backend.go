package console

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sluicelog/sluice/logconfig"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/query"
)

// maxConsoleBody caps a console request body (configs, index JSON,
// queries): far above anything the pages send.
const maxConsoleBody = 4 << 20

// consoleError is the console API's error body; the same shape as the Log
// Service API's so the page handles both alike.
type consoleError struct {
	Status  int    `json:"-"`
	Code    string `json:"errorCode"`
	Message string `json:"errorMessage"`
}

func (e *consoleError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *consoleError {
	return &consoleError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errorCode":"InternalServerError","errorMessage":"encode reply"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, err error) {
	var ce *consoleError
	if !errors.As(err, &ce) {
		ce = errorf(http.StatusInternalServerError, "InternalServerError", "%v", err)
	}
	writeJSON(w, ce.Status, ce)
}

func (c *Console) serveAPI(w http.ResponseWriter, r *http.Request, p string) {
	h := w.Header()
	securityHeaders(h)
	h.Set("Cache-Control", "no-store")
	if !sameOrigin(r) {
		writeErr(w, errorf(http.StatusForbidden, "CrossOrigin",
			"request from origin %q refused: the console only answers pages it served itself", r.Header.Get("Origin")))
		return
	}
	if p == "/session" {
		c.serveSession(w, r)
		return
	}
	sess, _, err := c.session(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	if !safeMethod(r.Method) && !csrfOK(sess, r) {
		writeErr(w, errorf(http.StatusForbidden, "CSRFTokenInvalid",
			"missing or wrong %s header: reload the page (the session's token changes at each sign-in)", csrfHeader))
		return
	}
	switch {
	case p == "/check-query" && r.Method == http.MethodPost:
		c.checkQuery(w, r)
	case p == "/validate-config" && r.Method == http.MethodPost:
		c.validateConfig(w, r, sess)
	case p == "/tail" && r.Method == http.MethodPost:
		c.tail(w, r, sess)
	case strings.HasPrefix(p, "/sls/"):
		c.proxy(w, r, sess)
	default:
		writeErr(w, errorf(http.StatusNotFound, "NotFound", "%s %s is not a console API", r.Method, r.URL.Path))
	}
}

// session returns the request's live session and its key, re-checking the
// key: a key deleted or given a new secret since sign-in ends its
// sessions.
func (c *Console) session(r *http.Request) (*session, meta.AccessKey, error) {
	sess, k, err := c.sessions.get(r.Context(), c.cfg.Keys, cookieValue(r), c.now())
	var kc *keyChangedError
	switch {
	case errors.Is(err, errNoSession):
		return nil, k, errorf(http.StatusUnauthorized, "SessionExpired", "not signed in (or the session expired): sign in with an access key")
	case errors.As(err, &kc):
		return nil, k, errorf(http.StatusUnauthorized, "SessionExpired",
			"access key %q was deleted or its secret changed: sign in again", kc.keyID)
	}
	return sess, k, err
}

type signInRequest struct {
	AccessKeyID     string `json:"accessKeyId"`
	AccessKeySecret string `json:"accessKeySecret"`
}

type projectGrant struct {
	Name       string `json:"name"`
	Permission string `json:"permission"`
}

// whoami is what the page learns about its session. The secret is not in
// it.
type whoami struct {
	AccessKeyID string         `json:"accessKeyId"`
	Admin       bool           `json:"admin"`
	Description string         `json:"description,omitempty"`
	Projects    []projectGrant `json:"projects"`
	CSRFToken   string         `json:"csrfToken"`
}

func whoamiOf(k meta.AccessKey, csrf string) whoami {
	out := whoami{AccessKeyID: k.ID, Admin: k.Admin, Description: k.Description, CSRFToken: csrf, Projects: []projectGrant{}}
	for name, perm := range k.Projects {
		out.Projects = append(out.Projects, projectGrant{Name: name, Permission: string(perm)})
	}
	sort.Slice(out.Projects, func(i, j int) bool { return out.Projects[i].Name < out.Projects[j].Name })
	return out
}

func (c *Console) serveSession(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		sess, k, err := c.session(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, whoamiOf(k, sess.csrf))
	case http.MethodPost:
		c.signIn(w, r)
	case http.MethodDelete:
		sess, _, err := c.session(r)
		if err != nil {
			// Already signed out: clear the cookie anyway.
			c.setCookie(w, r, "", -1)
			writeJSON(w, http.StatusOK, map[string]bool{"signedOut": true})
			return
		}
		if !csrfOK(sess, r) {
			writeErr(w, errorf(http.StatusForbidden, "CSRFTokenInvalid", "missing or wrong %s header", csrfHeader))
			return
		}
		if err := c.sessions.delete(r.Context(), sess.id); err != nil {
			writeErr(w, err)
			return
		}
		c.setCookie(w, r, "", -1)
		writeJSON(w, http.StatusOK, map[string]bool{"signedOut": true})
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeErr(w, errorf(http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET, POST or DELETE on %s", r.URL.Path))
	}
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	// No session yet, so no token: the custom header alone proves the
	// request came from script on a page of this origin (a cross-site form
	// cannot set it, and cross-origin script would need a CORS preflight
	// this handler never grants).
	if r.Header.Get(csrfHeader) == "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeErr(w, errorf(http.StatusForbidden, "CSRFTokenInvalid",
			"sign-in needs Content-Type: application/json and the %s header", csrfHeader))
		return
	}
	addr := clientAddr(r)
	if !c.throttle.allow(addr, c.now()) {
		w.Header().Set("Retry-After", "5")
		writeErr(w, errorf(http.StatusTooManyRequests, "TooManySignInFailures",
			"too many failed sign-ins from %s: wait a few seconds and check the key id and secret", addr))
		return
	}
	var req signInRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeErr(w, errorf(http.StatusBadRequest, "PostBodyInvalid", "sign-in body must be JSON {accessKeyId, accessKeySecret}: %v", err))
		return
	}
	req.AccessKeyID = strings.TrimSpace(req.AccessKeyID)
	req.AccessKeySecret = strings.TrimSpace(req.AccessKeySecret)
	if req.AccessKeyID == "" || req.AccessKeySecret == "" {
		writeErr(w, errorf(http.StatusBadRequest, "ParameterInvalid", "enter both the access key id and its secret"))
		return
	}
	k, err := c.cfg.Keys.GetAccessKey(r.Context(), req.AccessKeyID)
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		writeErr(w, fmt.Errorf("look up access key: %w", err))
		return
	}
	// One message for an unknown id and a wrong secret: do not confirm
	// which key ids exist.
	if err != nil || subtle.ConstantTimeCompare([]byte(k.Secret), []byte(req.AccessKeySecret)) != 1 {
		c.throttle.failed(addr, c.now())
		c.log.Warn("console sign-in refused", "accessKeyId", req.AccessKeyID, "remote", r.RemoteAddr)
		writeErr(w, errorf(http.StatusUnauthorized, "Unauthorized",
			"access key id or secret is wrong: check both (an admin key is in DATA-DIR/admin-key.json)"))
		return
	}
	id, sess, err := c.sessions.create(r.Context(), k, c.now())
	if err != nil {
		writeErr(w, err)
		return
	}
	c.setCookie(w, r, id, int(c.cfg.SessionMax.Seconds()))
	c.log.Info("console sign-in", "accessKeyId", k.ID, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, whoamiOf(k, sess.csrf))
}

// queryCheck is the reply of /check-query.
type queryCheck struct {
	OK bool `json:"ok"`
	// Pos is the error's byte offset in the query; Offset the same place
	// in UTF-16 code units (a JavaScript string index).
	Pos     int    `json:"pos"`
	Offset  int    `json:"offset"`
	Message string `json:"message,omitempty"`
	HasSQL  bool   `json:"hasSQL"`
	// Search is the search part as written (what histograms count).
	Search string `json:"search"`
}

func (c *Console) checkQuery(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Query    string `json:"query"`
		Logstore string `json:"logstore"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxConsoleBody)).Decode(&req); err != nil {
		writeErr(w, errorf(http.StatusBadRequest, "PostBodyInvalid", "body must be JSON {query, logstore}: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, checkQueryText(req.Query, req.Logstore))
}

// checkQueryText parses a "search | SQL" query as the server would (search
// syntax, then the SQL sandbox) and locates the first error.
func checkQueryText(text, logstore string) queryCheck {
	q, err := query.Parse(text)
	if err == nil && q.HasSQL {
		_, err = q.SandboxSQL(query.SandboxOptions{Logstore: logstore, DefaultLimit: 100})
	}
	out := queryCheck{OK: err == nil}
	if q != nil {
		out.HasSQL, out.Search = q.HasSQL, q.SearchText
	}
	if err != nil {
		var qe *query.Error
		if errors.As(err, &qe) {
			out.Pos, out.Message = qe.Pos, qe.Msg
		} else {
			out.Message = err.Error()
		}
		out.Pos = min(max(out.Pos, 0), len(text))
		out.Offset = utf16Offset(text, out.Pos)
	}
	return out
}

// utf16Offset converts a byte offset in s to a UTF-16 index (rounding
// down to a rune boundary).
func utf16Offset(s string, pos int) int {
	n := 0
	for i, r := range s {
		if i >= pos {
			break
		}
		if r == utf8.RuneError {
			n++
			continue
		}
		n += len(utf16.Encode([]rune{r}))
	}
	return n
}

// configCheck is the reply of /validate-config.
type configCheck struct {
	OK       bool                         `json:"ok"`
	Errors   []*logconfig.ValidationError `json:"errors"`
	Warnings []*logconfig.ValidationError `json:"warnings"`
}

func (c *Console) validateConfig(w http.ResponseWriter, r *http.Request, sess *session) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxConsoleBody))
	if err != nil {
		writeErr(w, errorf(http.StatusBadRequest, "PostBodyInvalid", "read body: %v", err))
		return
	}
	out := validateConfigText(raw)
	out.Errors = append(out.Errors, c.checkTarget(r, sess, raw)...)
	out.OK = len(out.Errors) == 0
	writeJSON(w, http.StatusOK, out)
}

// validateConfigText checks a Logtail config as CreateConfig will (defaults
// applied first) and lists every problem with its key path: a type error
// does not hide the validation of everything else (logconfig.Check).
func validateConfigText(raw []byte) configCheck {
	out := configCheck{Errors: []*logconfig.ValidationError{}, Warnings: []*logconfig.ValidationError{}}
	errs, warns := logconfig.Check(raw)
	out.Errors = append(out.Errors, errs...)
	out.Warnings = append(out.Warnings, warns...)
	out.OK = len(out.Errors) == 0
	return out
}

// checkTarget asks the API, with the session's key, whether the project
// and logstore a config sends to exist: a config for a missing logstore
// is valid JSON the server accepts, but its agents' every send would
// fail. A key that may not read the target project gets a warning
// instead (it cannot tell).
func (c *Console) checkTarget(r *http.Request, sess *session, raw []byte) []*logconfig.ValidationError {
	var cfg struct {
		Name string `json:"configName"`
		Out  struct {
			Project  any `json:"projectName"`
			Logstore any `json:"logstoreName"`
		} `json:"outputDetail"`
	}
	if json.Unmarshal(raw, &cfg) != nil {
		return nil
	}
	project, _ := cfg.Out.Project.(string)
	logstore, _ := cfg.Out.Logstore.(string)
	if project == "" || logstore == "" {
		return nil // missing or mistyped: logconfig reports it
	}
	problem := func(path, format string, args ...any) []*logconfig.ValidationError {
		return []*logconfig.ValidationError{{Config: cfg.Name, Path: path, Message: fmt.Sprintf(format, args...)}}
	}
	rec := c.callAPI(r, sess, http.MethodGet, project, "/logstores/"+url.PathEscape(logstore), "", nil)
	switch {
	case rec.status == http.StatusOK:
		return nil
	case rec.errorCode() == string(protocol.CodeProjectNotExist):
		return problem("outputDetail.projectName", "project %q does not exist: create it, or name an existing project", project)
	case rec.errorCode() == string(protocol.CodeLogStoreNotExist):
		return problem("outputDetail.logstoreName", "logstore %q does not exist in project %q: create it first, or the agents' sends fail", logstore, project)
	}
	return nil // no permission to look, or the API failed: the save will tell
}

// proxy re-issues /console/api/sls/{project}/{path} to the Log Service API
// as {path} signed with the session's key (project "_" = none, for
// ListProject). The reply is passed back unchanged.
func (c *Console) proxy(w http.ResponseWriter, r *http.Request, sess *session) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), Prefix+"/api/sls/")
	project, apiPath, _ := strings.Cut(rest, "/")
	apiPath = "/" + apiPath
	if project == "" {
		writeErr(w, errorf(http.StatusNotFound, "NotFound", "want /console/api/sls/{project}/{api path}"))
		return
	}
	if project == "_" {
		project = ""
	}
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxConsoleBody+1))
		if err != nil {
			writeErr(w, errorf(http.StatusBadRequest, "PostBodyInvalid", "read body: %v", err))
			return
		}
		if len(b) > maxConsoleBody {
			writeErr(w, errorf(http.StatusRequestEntityTooLarge, "PostBodyTooLarge", "console requests are limited to %d bytes", maxConsoleBody))
			return
		}
		body = b
	}
	rec := c.callAPI(r, sess, r.Method, project, apiPath, r.URL.RawQuery, body)
	out := w.Header()
	for k, v := range rec.header {
		lk := strings.ToLower(k)
		if lk == "content-type" || strings.HasPrefix(lk, "x-log-") {
			out[k] = v
		}
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// callAPI issues one Log Service API call in-process, signed with the
// session's key, on behalf of the console request r, and returns the
// reply. A request the API cannot be asked (a malformed path) is answered
// as the API would answer it.
func (c *Console) callAPI(r *http.Request, sess *session, method, project, apiPath, rawQuery string, body []byte) *recorder {
	rec := &recorder{header: http.Header{}}
	target := "http://console.invalid" + apiPath
	if rawQuery != "" {
		target += "?" + rawQuery
	}
	in, err := http.NewRequestWithContext(r.Context(), method, target, bytes.NewReader(body))
	if err != nil {
		writeErr(rec, errorf(http.StatusBadRequest, "ParameterInvalid", "bad API path: %v", err))
		return rec
	}
	in.RemoteAddr = r.RemoteAddr
	in.ContentLength = int64(len(body))
	in.Header.Set(protocol.HeaderAPIVersion, protocol.APIVersion)
	in.Header.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(body)))
	in.Header.Set("User-Agent", "sluice-console")
	if project != "" {
		in.Header.Set(protocol.HeaderProject, project)
	}
	var signBody []byte
	if len(body) > 0 {
		in.Header.Set("Content-Type", protocol.ContentTypeJSON)
		signBody = body
	}
	signer := protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: sess.keyID, AccessKeySecret: sess.secret}}
	if err := signer.SignRequest(in, signBody, c.now()); err != nil {
		writeErr(rec, err)
		return rec
	}
	c.cfg.API.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec
}

// errorCode is the errorCode of an API error reply ("" for others).
func (r *recorder) errorCode() string {
	var e struct {
		Code string `json:"errorCode"`
	}
	if r.status < 400 || json.Unmarshal(r.body.Bytes(), &e) != nil {
		return ""
	}
	return e.Code
}

// recorder buffers the API's reply so that only chosen headers reach the
// browser.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
