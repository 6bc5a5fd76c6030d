package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/console"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/meta/jsonfile"
)

// countingStore is a real jsonfile store that counts session writes.
type countingStore struct {
	*jsonfile.Store
	mu     sync.Mutex
	writes int
}

func (s *countingStore) count() {
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
}

func (s *countingStore) n() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *countingStore) PutConsoleSession(ctx context.Context, cs meta.ConsoleSession) error {
	s.count()
	return s.Store.PutConsoleSession(ctx, cs)
}

func (s *countingStore) TouchConsoleSession(ctx context.Context, id string, t time.Time) error {
	s.count()
	return s.Store.TouchConsoleSession(ctx, id, t)
}

func (s *countingStore) DeleteConsoleSessions(ctx context.Context, ids ...string) error {
	s.count()
	return s.Store.DeleteConsoleSessions(ctx, ids...)
}

// clockConsole is a console on a real jsonfile store with a clock the test
// moves; its API handler answers 200 to every signed request.
type clockConsole struct {
	t     *testing.T
	c     *console.Console
	store *countingStore
	now   time.Time
}

func newClockConsole(t *testing.T, maxSessions int) *clockConsole {
	m, err := jsonfile.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	require.NoError(t, m.PutAccessKey(context.Background(), meta.AccessKey{ID: adminID, Secret: adminSecret, Admin: true}))
	cc := &clockConsole{t: t, store: &countingStore{Store: m}, now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) })
	cc.c, err = console.New(console.Config{API: api, Keys: m, Sessions: cc.store, MaxSessions: maxSessions,
		Now: func() time.Time { return cc.now }})
	require.NoError(t, err)
	return cc
}

func (cc *clockConsole) signIn() (cookie string) {
	r := httptest.NewRequest("POST", "/console/api/session",
		strings.NewReader(`{"accessKeyId":"`+adminID+`","accessKeySecret":"`+adminSecret+`"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Sluice-CSRF", "signin")
	w := httptest.NewRecorder()
	cc.c.ServeHTTP(w, r)
	require.Equal(cc.t, http.StatusOK, w.Code, w.Body.String())
	for _, ck := range w.Result().Cookies() {
		if ck.Name == "sluice_console" {
			return ck.Value
		}
	}
	require.FailNow(cc.t, "no session cookie")
	return ""
}

func (cc *clockConsole) get(cookie string) int {
	r := httptest.NewRequest("GET", "/console/api/sls/_/", nil)
	r.AddCookie(&http.Cookie{Name: "sluice_console", Value: cookie})
	w := httptest.NewRecorder()
	cc.c.ServeHTTP(w, r)
	return w.Code
}

// A busy console writes a session's last use about once a minute, not
// per request, and idle expiry still counts from the last use.
func TestSessionWritesAreCoarse(t *testing.T) {
	cc := newClockConsole(t, 0)
	cookie := cc.signIn()
	signInWrites := cc.store.n()

	// Ten minutes of a request every 5 s: 120 requests.
	for range 120 {
		cc.now = cc.now.Add(5 * time.Second)
		require.Equal(t, http.StatusOK, cc.get(cookie))
	}
	writes := cc.store.n() - signInWrites
	require.GreaterOrEqual(t, writes, 9, "last use is kept roughly current")
	require.LessOrEqual(t, writes, 10, "at most one write a minute")

	// Idle 7 h 58 min after those requests: still signed in (the stored
	// last use lags by under a minute); past 8 h: refused and deleted.
	cc.now = cc.now.Add(8*time.Hour - 2*time.Minute)
	require.Equal(t, http.StatusOK, cc.get(cookie))
	cc.now = cc.now.Add(8*time.Hour + time.Second)
	require.Equal(t, http.StatusUnauthorized, cc.get(cookie))
	all, err := cc.store.ListConsoleSessions(context.Background())
	require.NoError(t, err)
	require.Empty(t, all)
}

// Sign-ins sweep expired sessions from the store and keep at most
// MaxSessions, dropping the least recently used.
func TestSessionStoreStaysBounded(t *testing.T) {
	cc := newClockConsole(t, 3)
	ctx := context.Background()
	stale := []string{cc.signIn(), cc.signIn()}
	cc.now = cc.now.Add(9 * time.Hour) // both idle past 8 h, never used again
	a := cc.signIn()
	cc.now = cc.now.Add(time.Minute)
	b := cc.signIn()
	all, err := cc.store.ListConsoleSessions(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2, "the expired sessions were swept at sign-in")

	cc.now = cc.now.Add(time.Minute)
	c := cc.signIn()
	cc.now = cc.now.Add(time.Minute)
	require.Equal(t, http.StatusOK, cc.get(a), "a is used: b is now the least recently used")
	d := cc.signIn()
	all, err = cc.store.ListConsoleSessions(ctx)
	require.NoError(t, err)
	require.Len(t, all, 3, "MaxSessions holds")
	require.Equal(t, http.StatusUnauthorized, cc.get(b), "the least recently used session was dropped")
	for _, ck := range []string{a, c, d} {
		require.Equal(t, http.StatusOK, cc.get(ck))
	}
	for _, ck := range stale {
		require.Equal(t, http.StatusUnauthorized, cc.get(ck))
	}
}
