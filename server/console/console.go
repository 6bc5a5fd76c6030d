// Package console serves Sluice's web console under /console: a single page
// written as plain ES modules and CSS, embedded in the server binary (no
// front-end build step), and the small backend it talks to under
// /console/api/.
//
// Sign-in takes an access key id and secret. The secret is checked against
// the metadata store, and a session is stored whose random id is the value
// of an HttpOnly, SameSite=Strict cookie scoped to /console. The browser
// never stores the secret, and neither does the session: it holds the
// SHA-256 of the cookie value, the key id, an HMAC of the key's secret
// keyed by the cookie (so a new secret ends the session), the CSRF token
// and its times; the secret is read from the key store at each request.
// Every
// mutating request must also carry the session's CSRF token in the
// X-Sluice-CSRF header (a custom header no cross-site form can send) and,
// when the browser sends one, an Origin matching the Host.
//
// Everything the console shows or changes goes through the Log Service API
// handler itself (Config.API): /console/api/sls/{project}/{api path} is
// re-issued in-process as a request signed with the session's key, so the
// console has exactly the key's permissions and the API's validation and
// error messages — there is no second implementation of any API. Two
// helpers answer what the API cannot say precisely: /console/api/check-query
// (the byte and UTF-16 position of a query syntax error, from server/query)
// and /console/api/validate-config (logconfig.ValidationErrors with their
// key paths, shown beside the editor).
//
// Sessions live in the metadata store (Config.Sessions), so they survive a
// server restart and, on a shared metadata backend, are shared between
// replicas. A request writes the session only when its stored last use is
// a minute old (or half the idle limit, if shorter); expired sessions are
// swept at each sign-in, and at most MaxSessions are kept.
//
// Mount it with a path prefix check (it answers only /console and below):
//
//	c, err := console.New(console.Config{API: apiHandler, Keys: metaStore, Sessions: metaStore, Logger: logger})
//	if strings.HasPrefix(r.URL.Path, console.Prefix) { c.ServeHTTP(w, r) }
package console

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/sluicelog/sluice/server/meta"
)

// Prefix is the URL path the console is served under.
const Prefix = "/console"

//go:embed assets
var assetFS embed.FS

// Keys looks access keys up (meta.Store satisfies it).
type Keys interface {
	GetAccessKey(ctx context.Context, id string) (meta.AccessKey, error)
}

// Config configures the console.
type Config struct {
	// API is the Log Service API handler; console requests are re-issued
	// to it, signed with the session's key.
	API http.Handler
	// Keys verifies sign-ins and notices revoked or rotated keys.
	Keys Keys
	// Sessions stores the sign-in sessions.
	Sessions SessionStore
	// SessionIdle ends a session unused for this long (8h when 0).
	SessionIdle time.Duration
	// SessionMax ends a session this long after sign-in (24h when 0).
	SessionMax time.Duration
	// MaxSessions bounds the sessions kept (10000 when 0); the least
	// recently used one is dropped beyond it.
	MaxSessions int
	// SecureCookie sets the Secure attribute on the session cookie. It is
	// also set for any request that arrived over TLS.
	SecureCookie bool
	Logger       *slog.Logger
	Now          func() time.Time
}

// Validate reports a configuration the console cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.API == nil:
		return errors.New("console: API handler is required")
	case c.Keys == nil:
		return errors.New("console: Keys is required")
	case c.Sessions == nil:
		return errors.New("console: Sessions is required")
	case c.SessionIdle < 0 || c.SessionMax < 0 || c.MaxSessions < 0:
		return errors.New("console: session limits must not be negative")
	}
	return nil
}

// Console is the web console's http.Handler.
type Console struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	throttle *signInThrottle
	assets   fs.FS
	etags    map[string]string
}

// New returns the console handler.
func New(cfg Config) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = 8 * time.Hour
	}
	if cfg.SessionMax == 0 {
		cfg.SessionMax = 24 * time.Hour
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = 10000
	}
	c := &Console{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	c.assets = sub
	c.etags = map[string]string{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		c.etags[p] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.sessions = newSessions(cfg.Sessions, cfg.SessionIdle, cfg.SessionMax, cfg.MaxSessions)
	c.throttle = newSignInThrottle(5*time.Second, 10, 10000)
	return c, nil
}

// ServeHTTP implements http.Handler for /console and everything below it.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == Prefix:
		http.Redirect(w, r, Prefix+"/", http.StatusFound)
	case strings.HasPrefix(p, Prefix+"/api/"):
		c.serveAPI(w, r, strings.TrimPrefix(p, Prefix+"/api"))
	case strings.HasPrefix(p, Prefix+"/"):
		c.serveAsset(w, r, strings.TrimPrefix(p, Prefix+"/"))
	default:
		http.NotFound(w, r)
	}
}

// securityHeaders are sent with every console response: only this origin's
// scripts and styles run, no framing (clickjacking), no referrer leaks.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if name == "" {
		name = "index.html"
	}
	name = path.Clean(name)
	etag, ok := c.etags[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(c.assets, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	securityHeaders(h)
	ct := contentTypes[path.Ext(name)]
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("ETag", etag)
	// Assets change with the binary: revalidate every time (cheap with
	// the ETag) so an upgraded server never mixes old and new modules.
	h.Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
