// Package apptest runs a real sluice-server (server/app: API, config server,
// console, JSON metadata, DuckDB store) in the test's process on a loopback
// port, with HTTP clients and Log Service SDK clients wired to it — what
// net/http/httptest is for a handler, for the whole server.
//
// The Log Service SDK puts the project in the host name
// ({project}.{base domain}), which no resolver knows, so every client made
// here dials the server's listener whatever host it asks for.
package apptest

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/server/app"
)

// The defaults Start fills in.
const (
	// BaseDomain is the endpoint host name clients use.
	BaseDomain = "sluice.localhost"
	// AdminID and AdminSecret are the admin key.
	AdminID     = "admin"
	AdminSecret = "admin-secret-0123456789"
)

// clientTimeout bounds one request of the clients made here, so that a
// hung server fails the test instead of the test binary's deadline.
const clientTimeout = 30 * time.Second

// IdleConns are the goroutines a test binary that uses Start may leave
// when it exits, for goleak.VerifyTestMain: the keep-alive loops of idle
// HTTP connections (the SDK's own transport keeps some).
func IdleConns() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	}
}

// Options configures Start.
type Options struct {
	// Config is the server's configuration. Zero fields get test defaults:
	// Listen "127.0.0.1:0", DataDir a fresh t.TempDir(), BaseDomain
	// BaseDomain, and the admin key AdminID/AdminSecret unless
	// AdminKeyID or AdminKeyFile is set. Set Listen and DataDir to those
	// of a stopped server to restart it.
	Config app.Config
	// Settings passes a logger or metrics registry to the server.
	Settings app.Settings
}

// Server is a started sluice-server; t.Cleanup stops it.
type Server struct {
	tb   testing.TB
	App  *app.Server
	cfg  app.Config
	addr string
	port string
	hc   *http.Client

	stopOnce sync.Once
}

// Start runs a server with o and registers its shutdown (which must
// succeed) with tb.Cleanup.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	cfg := o.Config
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	if cfg.BaseDomain == "" {
		cfg.BaseDomain = BaseDomain
	}
	if cfg.AdminKeyID == "" && cfg.AdminKeyFile == "" {
		cfg.AdminKeyID, cfg.AdminKeySecret = AdminID, AdminSecret
	}
	srv, err := app.New(cfg, o.Settings)
	require.NoError(tb, err)
	if err := srv.Start(context.Background()); err != nil {
		_ = srv.Shutdown(context.Background())
		require.NoError(tb, err)
	}
	s := &Server{tb: tb, App: srv, cfg: cfg, addr: srv.Addr()}
	_, s.port, err = net.SplitHostPort(s.addr)
	require.NoError(tb, err)
	s.hc = &http.Client{Transport: s.newTransport(), Timeout: clientTimeout}
	tb.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down now (a restart test's crash or outage) and
// closes the idle connections of the clients made here. It is idempotent;
// the address stays known, so clients made before can reach a server
// started again on it.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.hc.CloseIdleConnections()
		require.NoError(s.tb, s.App.Shutdown(context.Background()))
	})
}

// Addr is the listener's address, 127.0.0.1:port.
func (s *Server) Addr() string { return s.addr }

// URL is the server's base URL by address (http://127.0.0.1:port, https
// with TLS), for clients that need no project host name.
func (s *Server) URL() string { return s.scheme() + s.addr }

// Host is BaseDomain:port, the endpoint host clients make project host
// names from; only the clients made here can dial it.
func (s *Server) Host() string { return s.cfg.BaseDomain + ":" + s.port }

// Endpoint is Host with its scheme (http://sluice.localhost:port), as
// agents' outputs are configured.
func (s *Server) Endpoint() string { return s.scheme() + s.Host() }

// DataDir is the server's data directory.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// HTTPClient dials the server whatever the request's host; shared by the
// SDK clients made here.
func (s *Server) HTTPClient() *http.Client { return s.hc }

// Transport is a new transport that dials the server whatever the host,
// for code that takes a transport (the agent's Log Service output); its
// idle connections are closed at cleanup.
func (s *Server) Transport() *http.Transport {
	tr := s.newTransport()
	s.tb.Cleanup(tr.CloseIdleConnections)
	return tr
}

// SDK is a real aliyun-log-go-sdk client with key id/secret.
func (s *Server) SDK(id, secret string) sls.ClientInterface {
	// Plain HTTP is the SDK's default scheme; the endpoint carries it only
	// for HTTPS, as users write it.
	endpoint := s.Host()
	if s.cfg.TLSCert != "" {
		endpoint = s.Endpoint()
	}
	c := sls.CreateNormalInterface(endpoint, id, secret, "")
	c.SetHTTPClient(s.hc)
	return c
}

// AdminSDK is SDK with the server's admin key.
func (s *Server) AdminSDK() sls.ClientInterface {
	k := s.App.AdminKey()
	return s.SDK(k.ID, k.Secret)
}

func (s *Server) scheme() string {
	if s.cfg.TLSCert != "" {
		return "https://"
	}
	return "http://"
}

func (s *Server) newTransport() *http.Transport {
	addr := s.addr
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	if s.cfg.TLSCert != "" {
		// LoongCollector style: HTTPS with certificate checks off (test
		// certificates are self-signed).
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // self-signed test certificate
	}
	return tr
}
