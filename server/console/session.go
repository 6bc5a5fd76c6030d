package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// cookieName is the session cookie (scoped to Prefix).
const cookieName = "sluice_console"

// csrfHeader must carry the session's CSRF token on every mutating request.
const csrfHeader = "X-Sluice-CSRF"

// session is one signed-in browser. The secret is needed to sign the API
// requests made on the user's behalf; it never leaves the server.
type session struct {
	keyID, secret string
	csrf          string
	created       time.Time
	lastUsed      time.Time
}

// sessions is the in-memory session table, keyed by the SHA-256 of the
// cookie value (so a lookup's timing says nothing about stored ids).
type sessions struct {
	idle, max time.Duration
	limit     int

	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessions(idle, max time.Duration, limit int) *sessions {
	return &sessions{idle: idle, max: max, limit: limit, m: map[[32]byte]*session{}}
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// create stores a new session and returns its cookie value.
func (s *sessions) create(keyID, secret string, now time.Time) (string, *session, error) {
	id, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	sess := &session{keyID: keyID, secret: secret, csrf: csrf, created: now, lastUsed: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.m) >= s.limit {
		var oldest [32]byte
		var oldestT time.Time
		for k, v := range s.m {
			if oldestT.IsZero() || v.lastUsed.Before(oldestT) {
				oldest, oldestT = k, v.lastUsed
			}
		}
		delete(s.m, oldest)
	}
	s.m[sha256.Sum256([]byte(id))] = sess
	return id, sess, nil
}

// get returns the live session for a cookie value and marks it used.
func (s *sessions) get(id string, now time.Time) (*session, bool) {
	if id == "" {
		return nil, false
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if now.Sub(sess.lastUsed) > s.idle || now.Sub(sess.created) > s.max {
		delete(s.m, k)
		return nil, false
	}
	sess.lastUsed = now
	cp := *sess
	return &cp, true
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	delete(s.m, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

// deleteKey ends every session of an access key (revoked or rotated).
func (s *sessions) deleteKey(keyID string) {
	s.mu.Lock()
	for k, v := range s.m {
		if v.keyID == keyID {
			delete(s.m, k)
		}
	}
	s.mu.Unlock()
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *sessions) sweepLocked(now time.Time) {
	for k, v := range s.m {
		if now.Sub(v.lastUsed) > s.idle || now.Sub(v.created) > s.max {
			delete(s.m, k)
		}
	}
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
