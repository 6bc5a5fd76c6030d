package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sluicelog/sluice/server/meta"
)

// cookieName is the session cookie (scoped to Prefix).
const cookieName = "sluice_console"

// csrfHeader must carry the session's CSRF token on every mutating request.
const csrfHeader = "X-Sluice-CSRF"

// SessionStore keeps console sessions durably (meta.Store satisfies it).
// They live in the metadata store rather than a file of the console's own:
// it already holds the keys sessions depend on, is durable and locked
// against a second process, and a shared backend (PostgreSQL) would share
// sessions between replicas with no change here.
type SessionStore interface {
	PutConsoleSession(ctx context.Context, s meta.ConsoleSession) error
	GetConsoleSession(ctx context.Context, id string) (meta.ConsoleSession, error)
	TouchConsoleSession(ctx context.Context, id string, lastUsed time.Time) error
	DeleteConsoleSessions(ctx context.Context, ids ...string) error
	ListConsoleSessions(ctx context.Context) ([]meta.ConsoleSession, error)
}

// session is one signed-in browser, as a request sees it. The secret is
// the key's, read from the key store at each request to sign the API
// requests made on the user's behalf; it never leaves the server and is
// never stored with the session.
type session struct {
	id            string // the stored session's ID
	keyID, secret string
	csrf          string
}

// sessions applies the console's session rules to the SessionStore. The
// store is the only state, so a restart (or another replica on a shared
// store) sees every session.
type sessions struct {
	store     SessionStore
	idle, max time.Duration
	limit     int
	// touchEvery is how stale the stored LastUsed may get before a request
	// writes it: idle expiry is that much early at worst, and a busy
	// console writes once per session per touchEvery, not per request.
	touchEvery time.Duration
}

func newSessions(store SessionStore, idle, max time.Duration, limit int) *sessions {
	return &sessions{store: store, idle: idle, max: max, limit: limit, touchEvery: min(time.Minute, idle/2)}
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// sessionID is the stored id of a cookie value: a leaked store does not
// give out cookies, and a lookup's timing says nothing about stored ids.
func sessionID(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

// secretMAC binds a session to the key's secret at sign-in without storing
// it: a new secret gives another MAC.
func secretMAC(cookie, secret string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *sessions) expired(cs meta.ConsoleSession, now time.Time) bool {
	return now.Sub(cs.LastUsed) > s.idle || now.Sub(cs.Created) > s.max
}

// create stores a new session for key and returns its cookie value. It
// first sweeps expired sessions and, at the limit, the least recently
// used ones, so the store stays bounded.
func (s *sessions) create(ctx context.Context, k meta.AccessKey, now time.Time) (string, *session, error) {
	cookie, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	if err := s.sweep(ctx, now, s.limit-1); err != nil {
		return "", nil, err
	}
	cs := meta.ConsoleSession{ID: sessionID(cookie), KeyID: k.ID, SecretMAC: secretMAC(cookie, k.Secret),
		CSRFToken: csrf, Created: now, LastUsed: now}
	if err := s.store.PutConsoleSession(ctx, cs); err != nil {
		return "", nil, fmt.Errorf("store console session: %w", err)
	}
	return cookie, &session{id: cs.ID, keyID: k.ID, secret: k.Secret, csrf: csrf}, nil
}

// sweep deletes expired sessions and then the least recently used ones
// beyond keep, in one store write.
func (s *sessions) sweep(ctx context.Context, now time.Time, keep int) error {
	all, err := s.store.ListConsoleSessions(ctx)
	if err != nil {
		return fmt.Errorf("list console sessions: %w", err)
	}
	var drop []string
	live := all[:0]
	for _, cs := range all {
		if s.expired(cs, now) {
			drop = append(drop, cs.ID)
		} else {
			live = append(live, cs)
		}
	}
	if len(live) > keep {
		sort.Slice(live, func(i, j int) bool { return live[i].LastUsed.Before(live[j].LastUsed) })
		for _, cs := range live[:len(live)-keep] {
			drop = append(drop, cs.ID)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	if err := s.store.DeleteConsoleSessions(ctx, drop...); err != nil {
		return fmt.Errorf("delete expired console sessions: %w", err)
	}
	return nil
}

// errNoSession: the cookie names no live session (unknown, signed out,
// expired, or its key deleted or re-secreted).
var errNoSession = errors.New("no session")

// get returns the live session of a cookie value and its key, checking
// that the key still exists with the secret it had at sign-in, and marks
// the session used (in the store only when touchEvery has passed).
func (s *sessions) get(ctx context.Context, keys Keys, cookie string, now time.Time) (*session, meta.AccessKey, error) {
	if cookie == "" {
		return nil, meta.AccessKey{}, errNoSession
	}
	id := sessionID(cookie)
	cs, err := s.store.GetConsoleSession(ctx, id)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, meta.AccessKey{}, errNoSession
	}
	if err != nil {
		return nil, meta.AccessKey{}, fmt.Errorf("look up console session: %w", err)
	}
	if s.expired(cs, now) {
		if err := s.store.DeleteConsoleSessions(ctx, id); err != nil {
			return nil, meta.AccessKey{}, fmt.Errorf("delete expired console session: %w", err)
		}
		return nil, meta.AccessKey{}, errNoSession
	}
	k, err := keys.GetAccessKey(ctx, cs.KeyID)
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		return nil, meta.AccessKey{}, fmt.Errorf("look up access key: %w", err)
	}
	if err != nil || !hmac.Equal([]byte(secretMAC(cookie, k.Secret)), []byte(cs.SecretMAC)) {
		if err := s.store.DeleteConsoleSessions(ctx, id); err != nil {
			return nil, meta.AccessKey{}, fmt.Errorf("delete console session of a changed key: %w", err)
		}
		return nil, meta.AccessKey{}, &keyChangedError{keyID: cs.KeyID}
	}
	if now.Sub(cs.LastUsed) >= s.touchEvery {
		err := s.store.TouchConsoleSession(ctx, id, now)
		if errors.Is(err, meta.ErrNotFound) {
			return nil, meta.AccessKey{}, errNoSession // signed out meanwhile
		}
		if err != nil {
			return nil, meta.AccessKey{}, fmt.Errorf("mark console session used: %w", err)
		}
	}
	return &session{id: id, keyID: k.ID, secret: k.Secret, csrf: cs.CSRFToken}, k, nil
}

// keyChangedError: the session's key was deleted or given a new secret
// since sign-in.
type keyChangedError struct{ keyID string }

func (e *keyChangedError) Error() string { return "access key " + e.keyID + " changed" }

func (s *sessions) delete(ctx context.Context, id string) error {
	if err := s.store.DeleteConsoleSessions(ctx, id); err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    value,
		Path:     Prefix,
		MaxAge:   maxAge,
		HttpOnly: true,
		// X-Forwarded-Proto can only make the cookie stricter, so it is
		// safe to believe (a TLS-terminating proxy sets it).
		Secure:   c.cfg.SecureCookie || r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
		SameSite: http.SameSiteStrictMode,
	})
}

func cookieValue(r *http.Request) string {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	return ck.Value
}

func csrfOK(sess *session, r *http.Request) bool {
	got := r.Header.Get(csrfHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) == 1
}

// sameOrigin rejects requests whose Origin (sent by browsers on every
// cross-origin request and on same-origin POSTs) names another host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if o == "null" {
		return false
	}
	for _, scheme := range []string{"http://", "https://"} {
		if o == scheme+r.Host {
			return true
		}
	}
	return false
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }
