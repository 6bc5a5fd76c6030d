package console

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// signInThrottle slows down password guessing: each client address may
// fail a few sign-ins in a row, then one more every few seconds. Successful
// sign-ins are not counted.
type signInThrottle struct {
	every time.Duration
	burst int
	limit int // addresses remembered

	mu sync.Mutex
	m  map[string]*throttleEntry
}

type throttleEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newSignInThrottle(every time.Duration, burst, limit int) *signInThrottle {
	return &signInThrottle{every: every, burst: burst, limit: limit, m: map[string]*throttleEntry{}}
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// allow reports whether addr may try to sign in now (without using up a
// try: only failures do).
func (t *signInThrottle) allow(addr string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[addr]
	return !ok || e.lim.TokensAt(now) >= 1
}

// failed records a failed sign-in from addr.
func (t *signInThrottle) failed(addr string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[addr]
	if !ok {
		if len(t.m) >= t.limit {
			// Forget addresses whose budget has refilled; if none has,
			// forget the oldest so memory stays bounded.
			var oldest string
			var oldestT time.Time
			for a, x := range t.m {
				if x.lim.TokensAt(now) >= float64(t.burst) {
					delete(t.m, a)
					continue
				}
				if oldestT.IsZero() || x.seen.Before(oldestT) {
					oldest, oldestT = a, x.seen
				}
			}
			if len(t.m) >= t.limit {
				delete(t.m, oldest)
			}
		}
		e = &throttleEntry{lim: rate.NewLimiter(rate.Every(t.every), t.burst)}
		t.m[addr] = e
	}
	e.seen = now
	e.lim.AllowN(now, 1)
}
