// Package app assembles sluice-server: metadata (server/meta/jsonfile, or
// server/meta/postgres with Config.Meta),
// log storage (server/store/duckdb), authentication (server/auth) and the
// Log Service API (server/api) behind one HTTP(S) listener. cmd/sluice-server
// is a thin main around it; end-to-end tests construct it in-process:
//
//	srv, err := app.New(app.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0",
//		BaseDomain: "sluice.localhost", AdminKeyID: "admin", AdminKeySecret: "secret-secret-secret"}, app.Settings{})
//	err = srv.Start(ctx)
//	defer srv.Shutdown(ctx)
//	addr := srv.Addr() // "127.0.0.1:41234"
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicelog/sluice/logconfig"
	"github.com/sluicelog/sluice/server/alert"
	"github.com/sluicelog/sluice/server/api"
	"github.com/sluicelog/sluice/server/auth"
	"github.com/sluicelog/sluice/server/configserver"
	"github.com/sluicelog/sluice/server/configserver/pgregistry"
	"github.com/sluicelog/sluice/server/console"
	"github.com/sluicelog/sluice/server/consumer"
	"github.com/sluicelog/sluice/server/consumer/pgconsumer"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/meta/jsonfile"
	"github.com/sluicelog/sluice/server/meta/postgres"
	"github.com/sluicelog/sluice/server/objstore"
	"github.com/sluicelog/sluice/server/store"
	"github.com/sluicelog/sluice/server/store/duckdb"
	"github.com/sluicelog/sluice/server/store/duckdb/pgcatalog"
)

// AdminKeyFileName is where a generated admin key is written inside the
// data directory (mode 0600).
const AdminKeyFileName = "admin-key.json"

// Config configures the server.
type Config struct {
	// Listen is the TCP address ("127.0.0.1:0" picks a free port).
	Listen string
	// DataDir holds the metadata file, the log database and a generated
	// admin key.
	DataDir string
	// BaseDomain is the endpoint host name; {project}.{BaseDomain} targets a
	// project (see api.Config.BaseDomain).
	BaseDomain string
	// Region is reported in project descriptions.
	Region string
	// AdminKeyID/AdminKeySecret set the admin key; AdminKeyFile names a JSON
	// key file instead ({"accessKeyId", "accessKeySecret"}). With neither,
	// an existing admin key is kept, or one is generated into
	// DataDir/admin-key.json.
	AdminKeyID, AdminKeySecret, AdminKeyFile string
	// TLSCert and TLSKey (PEM files) switch the listener to HTTPS.
	TLSCert, TLSKey string
	// MaxBodyBytes caps request bodies as received (api default when 0).
	MaxBodyBytes int64
	// QueryTimeout bounds one GetLogs/GetHistograms call (api default when 0).
	QueryTimeout time.Duration
	// Meta selects the metadata backend: empty keeps it in DataDir/meta
	// (a JSON file, one node); a postgres:// (or postgresql://) URL keeps
	// it in that PostgreSQL database, shared by every node that names it.
	Meta string
	// Storage selects where log segments live: empty keeps them in
	// DataDir/logs (one node); s3://bucket/prefix keeps them in that
	// bucket, shared by every node naming it, with the segment catalog in
	// the Meta database (which must then be PostgreSQL). See Objects.
	Storage string
	// Objects configures the bucket's endpoint, credentials and the local
	// read cache when Storage is s3://; URL and an empty CacheDir
	// (DataDir/cache) are filled in.
	Objects objstore.Config
	// CommitInterval is the group commit of shared storage (writes are
	// acknowledged once uploaded and recorded; default 200ms).
	CommitInterval time.Duration
	// ResendWindow: a group sent again (same __pack_id__ and content)
	// within this long of its commit is not stored twice (shared storage;
	// default 1h, negative: off).
	ResendWindow time.Duration
	// Node names this server among several (default host name and pid).
	Node string
	// Store tunes the DuckDB store; DataDir is filled in.
	Store duckdb.Config
	// ShutdownTimeout bounds the drain of in-flight requests (10s when 0).
	ShutdownTimeout time.Duration

	// Connection bounds (see docs/architecture.md, "Limits"):
	// ReadHeaderTimeout bounds reading a request's header (10s when 0);
	// BodyReadTimeout reading its body once authenticated (1m when 0);
	// IdleTimeout how long a keep-alive connection may idle (2m when 0).
	// A reply must be written within BodyReadTimeout + QueryTimeout + 1m.
	ReadHeaderTimeout, BodyReadTimeout, IdleTimeout time.Duration
	// MaxConnections caps open connections (4096, or fewer when the
	// process may open fewer files, when 0); MaxConnectionsPerIP those
	// from one client address (512 when 0). Connections over a cap are
	// closed at once and counted.
	MaxConnections, MaxConnectionsPerIP int
	// MaxInflightBodyBytes bounds request bodies being read or handled at
	// once (api default when 0).
	MaxInflightBodyBytes int64
	// MetricsToken, when set, is required on /metrics as a bearer token.
	MetricsToken string
	// MaxFutureSkew and MaxWriteDays bound PutLogs' log times (api
	// defaults when 0: 15 minutes ahead, 32 days per request).
	MaxFutureSkew time.Duration
	MaxWriteDays  int
	// Quotas bound projects, logstores and index keys (api defaults when
	// zero).
	Quotas api.Quotas
	// AlertTick is how often due alerts are looked for (5s when 0);
	// AlertRetryBackoff the first wait before a failed webhook is retried
	// (1s when 0, doubling; 4 attempts). See server/alert.
	AlertTick, AlertRetryBackoff time.Duration
}

// withDefaults fills the zero bounds.
func (c *Config) withDefaults() {
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.BodyReadTimeout == 0 {
		c.BodyReadTimeout = api.DefaultBodyReadTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = time.Minute
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = defaultMaxConnections()
	}
	if c.MaxConnectionsPerIP == 0 {
		c.MaxConnectionsPerIP = 512
	}
}

// Validate reports configuration errors naming the flag to fix.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("--data-dir is required: a writable directory for metadata and logs")
	case c.Listen == "":
		return errors.New("--listen is required, e.g. :8080")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	case (c.AdminKeyID == "") != (c.AdminKeySecret == ""):
		return errors.New("--admin-key-id and --admin-key-secret go together: give both or neither")
	case c.ReadHeaderTimeout < 0 || c.BodyReadTimeout < 0 || c.IdleTimeout < 0 || c.MaxConnections < 0 || c.MaxConnectionsPerIP < 0:
		return errors.New("--read-header-timeout, --body-read-timeout, --idle-timeout, --max-connections and --max-connections-per-ip must not be negative")
	case c.Meta != "" && !isPostgresURL(c.Meta):
		return fmt.Errorf("--meta %q: give a postgres://user:password@host:5432/db URL, or nothing to keep metadata in --data-dir", redactURL(c.Meta))
	case c.Storage != "" && !strings.HasPrefix(c.Storage, "s3://"):
		return fmt.Errorf("--storage %q: give an s3://bucket/prefix URL, or nothing to keep logs in --data-dir", c.Storage)
	case c.Storage != "" && c.Meta == "":
		return errors.New("--storage s3://... needs --meta postgres://...: the segment catalog every node shares lives in PostgreSQL")
	case c.Storage != "" && c.Store.SyncInterval > 0:
		return errors.New("--durability=async does not apply with --storage s3://...: a write is acknowledged once it is in object storage")
	}
	return nil
}

// Settings carries the logger and metrics registry.
type Settings struct {
	Logger *slog.Logger
	// Registerer and Gatherer: where metrics go and what /metrics serves.
	// Nil: a private registry (with Go and process collectors) is used.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

// Server is a running (or ready to run) sluice-server.
type Server struct {
	cfg  Config
	log  *slog.Logger
	meta meta.Store
	pool *pgxpool.Pool // PostgreSQL shared by metadata and the segment catalog (nil: no PostgreSQL)
	logs *duckdb.Store
	api  *api.API
	// handler routes /Agent/ to the config server, /console to the web
	// console, the rest to the API.
	handler http.Handler
	cs      *configserver.Server
	alerts  *alert.Evaluator
	// stopAlerts ends the evaluator Start began; alertsDone closes when it
	// has stopped.
	stopAlerts context.CancelFunc
	alertsDone chan struct{}
	admin      meta.AccessKey
	http       *http.Server
	reg        prometheus.Registerer

	mu       sync.Mutex
	tcp      net.Listener // bound by New, served from Start
	ln       net.Listener
	serveErr chan error
	shutdown bool
}

// New binds Config.Listen, opens the data directory (metadata, log store),
// makes sure an admin key exists and builds the HTTP handler. Call Start to
// serve; Shutdown releases everything even without Start.
func New(cfg Config, set Settings) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	cfg.withDefaults()
	logger := set.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if set.Registerer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		set.Registerer, set.Gatherer = reg, reg
	}
	// The port first: a second server started on a taken port must fail
	// before it creates a data directory or an admin key (or opens a
	// store another server is using).
	tcp, err := listen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: logger, tcp: tcp}
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create --data-dir %s: %w", cfg.DataDir, err)
	}
	if s.meta, err = s.openMeta(cfg); err != nil {
		return nil, err
	}
	storeCfg := cfg.Store
	storeCfg.DataDir = filepath.Join(cfg.DataDir, "logs")
	if storeCfg.QueryTimeout == 0 {
		storeCfg.QueryTimeout = cfg.QueryTimeout
	}
	var consumers consumer.Assigner // nil: in this server's memory
	if cfg.Storage != "" {
		if storeCfg.Shared, err = s.openShared(cfg, logger, set.Registerer); err != nil {
			return nil, err
		}
		// Several nodes: consumers of one group may heartbeat to any of
		// them, so the group's shard assignment lives in PostgreSQL too.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		b, err := pgconsumer.Open(ctx, s.pool)
		cancel()
		if err != nil {
			return nil, err
		}
		consumers = consumer.Shared{B: b}
	}
	if s.logs, err = duckdb.Open(storeCfg, duckdb.Settings{Logger: logger.With("component", "store"), Registerer: set.Registerer}); err != nil {
		return nil, err
	}
	if err := s.restoreLogstores(context.Background()); err != nil {
		return nil, err
	}
	s.admin, err = auth.Bootstrap(context.Background(), s.meta, auth.BootstrapConfig{
		ID: cfg.AdminKeyID, Secret: cfg.AdminKeySecret, File: cfg.AdminKeyFile,
		GeneratedFile: filepath.Join(cfg.DataDir, AdminKeyFileName), Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	authn := auth.New(s.meta, auth.Options{})
	// Agents heartbeat here (/Agent/...) and get their machine groups'
	// configs; ListMachines reads the same registry, shared by every server
	// on one PostgreSQL.
	csCfg := configserver.Config{
		Meta: s.meta, Auth: authn, StatePath: filepath.Join(cfg.DataDir, "agents.json"),
		Logger: logger.With("component", "configserver"), Registerer: set.Registerer,
	}
	if s.pool != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		reg, err := pgregistry.Open(ctx, s.pool)
		cancel()
		if err != nil {
			return nil, err
		}
		csCfg.Shared = reg
	}
	s.cs, err = configserver.New(csCfg)
	if err != nil {
		return nil, err
	}
	logs := restoringStore{Store: s.logs, meta: s.meta, log: logger.With("component", "store")}
	s.api, err = api.New(api.Config{
		BaseDomain:           cfg.BaseDomain,
		Region:               cfg.Region,
		MaxBodyBytes:         cfg.MaxBodyBytes,
		MaxInflightBodyBytes: cfg.MaxInflightBodyBytes,
		BodyReadTimeout:      cfg.BodyReadTimeout,
		MaxFutureSkew:        cfg.MaxFutureSkew,
		MaxWriteDays:         cfg.MaxWriteDays,
		Quotas:               cfg.Quotas,
		MetricsToken:         cfg.MetricsToken,
		QueryTimeout:         cfg.QueryTimeout,
		Meta:                 s.meta,
		Logs:                 logs,
		Auth:                 authn,
		ValidateConfig:       ValidateLogtailConfig,
		Machines:             s.cs,
		Consumers:            consumers,
		Logger:               logger.With("component", "api"),
		Registerer:           set.Registerer,
		Gatherer:             set.Gatherer,
	})
	if err != nil {
		return nil, err
	}
	node := cfg.Node
	if node == "" {
		h, _ := os.Hostname()
		node = h + "-" + strconv.Itoa(os.Getpid())
	}
	s.alerts = alert.New(alert.Config{Meta: s.meta, Logs: logs, Node: node, Tick: cfg.AlertTick,
		RetryBackoff: cfg.AlertRetryBackoff, QueryTimeout: cfg.QueryTimeout, Logger: logger.With("component", "alerts")})
	// The web console calls the API in-process, signed with the key the
	// user signed in with (server/console); its sessions are kept in the
	// metadata store, so a restart signs no one out.
	cons, err := console.New(console.Config{API: s.api, Keys: s.meta, Sessions: s.meta, SecureCookie: cfg.TLSCert != "",
		Logger: logger.With("component", "console")})
	if err != nil {
		return nil, err
	}
	// Not an http.ServeMux: it would clean and redirect paths the API
	// answers itself.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/Agent/") {
			s.cs.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == console.Prefix || strings.HasPrefix(r.URL.Path, console.Prefix+"/") {
			cons.ServeHTTP(w, r)
			return
		}
		if browserAtRoot(r) {
			// A person typed the server's address: the console, not the
			// API's JSON 401 for an unsigned ListProject.
			http.Redirect(w, r, console.Prefix+"/", http.StatusFound)
			return
		}
		s.api.ServeHTTP(w, r)
	})
	s.handler = handler
	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		// The API sets its own deadline for a body once the request is
		// authenticated; this bounds the console's and agents' requests.
		ReadTimeout:    cfg.ReadHeaderTimeout + cfg.BodyReadTimeout,
		WriteTimeout:   cfg.BodyReadTimeout + cfg.QueryTimeout + time.Minute,
		IdleTimeout:    cfg.IdleTimeout,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s.reg = set.Registerer
	return s, nil
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// redactURL hides a password in a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func (s *Server) openMeta(cfg Config) (meta.Store, error) {
	if cfg.Meta == "" {
		return jsonfile.Open(filepath.Join(cfg.DataDir, "meta"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pc, err := pgxpool.ParseConfig(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("--meta %s: %w", redactURL(cfg.Meta), err)
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, fmt.Errorf("--meta %s: %w", redactURL(cfg.Meta), err)
	}
	return postgres.OpenPool(ctx, s.pool)
}

// openShared opens the bucket and the PostgreSQL segment catalog for
// shared storage.
func (s *Server) openShared(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*duckdb.Shared, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cat, err := pgcatalog.Open(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	oc := cfg.Objects
	oc.URL = cfg.Storage
	if oc.CacheDir == "" {
		oc.CacheDir = filepath.Join(cfg.DataDir, "cache")
	}
	b, err := objstore.Open(ctx, oc, objstore.Settings{Logger: logger.With("component", "objstore"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	return &duckdb.Shared{Catalog: cat, Objects: b, Node: cfg.Node, CommitInterval: cfg.CommitInterval, ResendWindow: cfg.ResendWindow}, nil
}

// restoreLogstores tells the store about every logstore in the metadata
// (retention and index), so a store whose files were lost or that keeps
// nothing across restarts is consistent with the metadata.
func (s *Server) restoreLogstores(ctx context.Context) error {
	projects, _, err := s.meta.ListProjects(ctx, meta.Page{})
	if err != nil {
		return err
	}
	for _, p := range projects {
		names, _, err := s.meta.ListLogstores(ctx, p.Name, meta.Page{})
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := restoreLogstore(ctx, s.meta, s.logs, p.Name, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// ValidateLogtailConfig checks a Logtail config body with logconfig
// (defaults applied first, as an agent would).
func ValidateLogtailConfig(raw []byte) error {
	c, err := logconfig.Parse(raw)
	if err != nil {
		return err
	}
	c.ApplyDefaults()
	return c.Validate()
}

// browserAtRoot reports an unsigned GET / from a browser (it accepts
// HTML); SDKs calling ListProject there sign their requests.
func browserAtRoot(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/" && r.Header.Get("Authorization") == "" &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}

// Handler is the whole server: the config server under /Agent/, the web
// console under /console/, the Log Service API for the rest (for tests that drive it with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

// ConfigServer is the agent config server (heartbeats, ListMachines).
func (s *Server) ConfigServer() *configserver.Server { return s.cs }

// AdminKey is the admin access key (configured, found or generated).
func (s *Server) AdminKey() meta.AccessKey { return s.admin }

// Meta is the metadata store (e.g. to create keys in tests).
func (s *Server) Meta() meta.Store { return s.meta }

// Start serves on the listener New bound, in the background.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return errors.New("server is shut down")
	}
	if s.ln != nil {
		return errors.New("server already started")
	}
	tcp := s.tcp
	s.tcp = nil
	var err error
	var ln net.Listener
	if ln, err = newConnLimiter(tcp, s.cfg.MaxConnections, s.cfg.MaxConnectionsPerIP, s.reg); err != nil {
		tcp.Close()
		return fmt.Errorf("listener metrics: %w", err)
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("load --tls-cert/--tls-key: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.ln = ln
	s.serveErr = make(chan error, 1)
	actx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopAlerts, s.alertsDone = stop, make(chan struct{})
	go func() {
		defer close(s.alertsDone)
		s.alerts.Run(actx)
	}()
	go func() {
		err := s.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	s.log.Info("sluice-server listening", "addr", ln.Addr().String(), "tls", s.cfg.TLSCert != "",
		"baseDomain", s.cfg.BaseDomain, "dataDir", s.cfg.DataDir, "meta", metaName(s.cfg.Meta), "storage", storageName(s.cfg.Storage))
	return nil
}

// listen binds addr; a port in use is said in words, with the flag that
// changes it.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: the port is in use (another sluice-server, or another program, holds it): stop that or choose another address with --listen (env SLUICE_LISTEN): %w", addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s (--listen): %w", addr, err)
	}
	return ln, nil
}

// Addr is the bound address ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Done returns a channel that yields the serve loop's error (nil after a
// clean shutdown); nil before Start.
func (s *Server) Done() <-chan error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serveErr
}

// Shutdown stops accepting requests, waits for in-flight ones (up to ctx
// or ShutdownTimeout), then flushes and closes the store and metadata. It
// is idempotent and safe without Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return nil
	}
	s.shutdown = true
	started := s.ln != nil
	if s.tcp != nil { // bound by New, never served
		_ = s.tcp.Close()
		s.tcp = nil
	}
	s.mu.Unlock()

	var errs []error
	if started {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
		defer cancel()
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain HTTP: %w", err))
			_ = s.http.Close()
		}
		if err := <-s.serveErr; err != nil {
			errs = append(errs, err)
		}
		s.serveErr <- nil // keep Done readable
		s.stopAlerts()
		<-s.alertsDone
	}
	errs = append(errs, s.close())
	return errors.Join(errs...)
}

func (s *Server) close() error {
	var errs []error
	if s.tcp != nil { // never started
		_ = s.tcp.Close()
		s.tcp = nil
	}
	if s.cs != nil {
		if err := s.cs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("save agent registry: %w", err))
		}
	}
	if s.logs != nil {
		if err := s.logs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close log store: %w", err))
		}
	}
	if s.meta != nil {
		if err := s.meta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close metadata: %w", err))
		}
	}
	if s.pool != nil {
		s.pool.Close()
	}
	return errors.Join(errs...)
}

func metaName(dsn string) string {
	if dsn == "" {
		return "jsonfile"
	}
	return redactURL(dsn)
}

func storageName(u string) string {
	if u == "" {
		return "data-dir"
	}
	return u
}

func storeSpec(ls meta.Logstore) store.LogstoreSpec {
	return store.LogstoreSpec{Project: ls.Project, Logstore: ls.Name, TTLDays: ls.TTL}
}
