// Package api serves the Log Service HTTP API (docs/log-service-api.md; coverage in
// docs/api.md): PutLogs on every client's path, GetLogs, GetHistograms,
// ListTopics, GetContextLogs and GetProjectLogs, shards (cursors,
// PullLogs) and consumer groups, projects, logstores, indexes, machine
// groups, Logtail configs, saved searches and dashboards, web tracking,
// plus Sluice's access-key administration. It authenticates every request
// but web tracking's (server/auth), takes the
// project from x-log-project or the Host name, and answers with the exact
// headers and JSON shapes the SDKs decode. Storage and metadata are reached
// through the small interfaces declared here.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/alert"
	"github.com/sluicelog/sluice/server/consumer"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/store"
)

// LogStore is the log storage the API reads and writes (store.Store
// without Close).
type LogStore interface {
	EnsureLogstore(ctx context.Context, spec store.LogstoreSpec) error
	DropLogstore(ctx context.Context, project, logstore string) error
	Write(ctx context.Context, project, logstore string, groups []protocol.LogGroup, received time.Time) error
	Search(ctx context.Context, project, logstore string, req store.SearchRequest) (*store.SearchResult, error)
	Histogram(ctx context.Context, project, logstore string, req store.HistogramRequest) ([]store.Bucket, error)
	ShardLogs
}

// Authenticator verifies a request's signature from its headers and
// returns the key that signed it, then checks the body against the digest
// the signature covers (auth.Authenticator).
type Authenticator interface {
	AuthenticateHeaders(r *http.Request) (meta.AccessKey, error)
	CheckBody(r *http.Request, body []byte) error
}

// ConfigValidator checks a Logtail config body (logconfig). Its error
// message is sent to the client, so it should name the key path and fix.
type ConfigValidator func(raw []byte) error

// MachineLister answers ListMachines with the agents a machine group
// selects (server/configserver): the JSON body {count, total, machines}.
type MachineLister interface {
	ListMachinesJSON(ctx context.Context, g meta.MachineGroup, offset, size int) ([]byte, error)
}

// Config configures the API handler.
type Config struct {
	// BaseDomain is the endpoint host name clients are configured with
	// (e.g. "sluice.example.com"); a request to {project}.{BaseDomain}
	// targets that project. Empty: the project comes only from the
	// x-log-project header.
	BaseDomain string
	// Region is reported in project descriptions ("sluice" when empty).
	Region string
	// MaxBodyBytes caps a request body as received (compressed); 0 means
	// protocol.MaxRawBodySize plus 1 MiB.
	MaxBodyBytes int64
	// MaxRawBytes caps a PutLogs body once decompressed (the sum over all
	// packages of a batch_group request); 0 means protocol.MaxRawBodySize.
	MaxRawBytes int
	// MaxInflightBodyBytes bounds the bytes of request bodies (as received
	// plus their declared raw size) being read or handled at once
	// (DefaultMaxInflightBodyBytes when 0); a request waits up to
	// BodyBudgetWait (DefaultBodyBudgetWait when 0) for room, then gets
	// 503 ServerBusy. BodyReadTimeout bounds reading one body
	// (DefaultBodyReadTimeout when 0). See bodies.go.
	MaxInflightBodyBytes int64
	BodyBudgetWait       time.Duration
	BodyReadTimeout      time.Duration

	// MaxFutureSkew is how far ahead of the server's clock a log's time
	// may be (DefaultMaxFutureSkew, 15 minutes, when 0); MaxWriteDays caps
	// the distinct days one PutLogs may span (DefaultMaxWriteDays when
	// 0). Logs older than the logstore's ttl are refused too (timewindow.go).
	MaxFutureSkew time.Duration
	MaxWriteDays  int
	// Quotas bound projects, logstores per project and index keys
	// (quotas.go).
	Quotas Quotas

	// QueryTimeout bounds one GetLogs or GetHistograms call (60s when 0);
	// a query that runs longer is cancelled and answered QueryTimeout (400:
	// the same query would time out again).
	QueryTimeout time.Duration

	Meta           meta.Store
	Logs           LogStore
	Auth           Authenticator
	ValidateConfig ConfigValidator // nil: only JSON syntax and configName are checked
	// Consumers assigns consumer groups' shards to their consumers (nil:
	// consumer.Local, in this server's memory; consumer.Shared when
	// several servers share the metadata).
	Consumers consumer.Assigner
	// Machines lists the agents of a machine group (nil: ListMachines is
	// always empty).
	Machines MachineLister

	Logger     *slog.Logger
	Registerer prometheus.Registerer // metrics are registered here (nil: not registered)
	Gatherer   prometheus.Gatherer   // served on /metrics (nil: /metrics is 404)
	// MetricsToken, when set, is required on /metrics as
	// "Authorization: Bearer <token>" (Prometheus' authorization or
	// bearer_token_file): the metrics name every project and logstore.
	MetricsToken string
	Now          func() time.Time
}

// Validate reports a configuration the handler cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.Meta == nil:
		return errors.New("api: Meta is required")
	case c.Logs == nil:
		return errors.New("api: Logs is required")
	case c.Auth == nil:
		return errors.New("api: Auth is required")
	case c.MaxBodyBytes < 0 || c.MaxRawBytes < 0 || c.QueryTimeout < 0 || c.MaxFutureSkew < 0 || c.MaxWriteDays < 0 ||
		c.MaxInflightBodyBytes < 0 || c.BodyReadTimeout < 0 || c.BodyBudgetWait < 0:
		return errors.New("api: body limits, timeouts, MaxFutureSkew and MaxWriteDays must not be negative")
	case c.Quotas.validate() != nil:
		return c.Quotas.validate()
	case strings.Contains(c.BaseDomain, ":") || strings.Contains(c.BaseDomain, "/"):
		return fmt.Errorf("api: base domain %q must be a bare host name (no scheme, no port)", c.BaseDomain)
	}
	return nil
}

// API is the Log Service HTTP handler.
type API struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	bufs    sync.Pool // *[]byte request/decompression buffers
	metricH http.Handler
	router  shardRouter
	// consumers tracks consumer-group membership and shard assignment.
	consumers consumer.Assigner
	// docMu serialises updates of saved searches and dashboards (chart
	// edits rewrite their dashboard). Per server: edits through two
	// servers sharing a database can still race, the later write winning.
	docMu  sync.Mutex
	window windowMetrics
	bodies *bodyBudget
	// createMu makes counting and creating one step for the quotas (on
	// this node; nodes sharing PostgreSQL metadata may overshoot by the
	// creations they race).
	createMu sync.Mutex
}

// New returns the handler.
func New(cfg Config) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = protocol.MaxRawBodySize + 1<<20
	}
	if cfg.MaxRawBytes == 0 {
		cfg.MaxRawBytes = protocol.MaxRawBodySize
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = time.Minute
	}
	cfg.Quotas = cfg.Quotas.withDefaults()
	if cfg.MaxInflightBodyBytes == 0 {
		cfg.MaxInflightBodyBytes = DefaultMaxInflightBodyBytes
	}
	if cfg.BodyReadTimeout == 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if cfg.BodyBudgetWait == 0 {
		cfg.BodyBudgetWait = DefaultBodyBudgetWait
	}
	if cfg.MaxFutureSkew == 0 {
		cfg.MaxFutureSkew = DefaultMaxFutureSkew
	}
	if cfg.MaxWriteDays == 0 {
		cfg.MaxWriteDays = DefaultMaxWriteDays
	}
	if cfg.Region == "" {
		cfg.Region = "sluice"
	}
	cfg.BaseDomain = strings.ToLower(strings.TrimSuffix(cfg.BaseDomain, "."))
	a := &API{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.consumers = cfg.Consumers
	if a.consumers == nil {
		a.consumers = consumer.Local{C: consumer.New(a.now)}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	a.metrics = m
	a.window = newWindowMetrics()
	a.bodies = newBodyBudget(cfg.MaxInflightBodyBytes)
	if cfg.Registerer != nil {
		for _, c := range append(a.bodies.collectors(), a.window.refusedLogs) {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("api: register metrics: %w", err)
			}
		}
	}
	if cfg.Gatherer != nil {
		a.metricH = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})
	}
	return a, nil
}

type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	logs         *prometheus.CounterVec
	rawBytes     *prometheus.CounterVec
	wireBytes    *prometheus.CounterVec
	rejectedLogs *prometheus.CounterVec
	pulledGroups *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_requests_total", Help: "Log Service API requests by API and error code (\"\" = success).",
		}, []string{"api", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_api_request_duration_seconds", Help: "Log Service API request latency.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"api"}),
		logs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_ingested_logs_total", Help: "Log events accepted by PutLogs (durable in the store).",
		}, []string{"project", "logstore"}),
		rawBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_ingested_raw_bytes_total", Help: "Uncompressed protobuf bytes accepted by PutLogs.",
		}, []string{"project", "logstore"}),
		wireBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_ingested_wire_bytes_total", Help: "Request body bytes (as received, compressed) accepted by PutLogs.",
		}, []string{"project", "logstore"}),
		rejectedLogs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_rejected_putlogs_total", Help: "PutLogs requests refused, by error code; the client got the error and keeps the data.",
		}, []string{"code"}),
		pulledGroups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_pulled_groups_total", Help: "Log groups returned by PullLogs (consumers, BatchGetLogs).",
		}, []string{"project", "logstore"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.logs, m.rawBytes, m.wireBytes, m.rejectedLogs, m.pulledGroups} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("api: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// request is one API call as the handlers see it.
type request struct {
	r        *http.Request
	w        http.ResponseWriter
	id       string
	project  string
	key      meta.AccessKey
	body     []byte // as received
	received time.Time
	vars     map[string]string
	api      string
}

func (q *request) query(name string) string { return q.r.URL.Query().Get(name) }

type handlerFunc func(ctx context.Context, q *request) error

// route is a matched endpoint.
type route struct {
	api     string
	h       handlerFunc
	perm    meta.Permission
	project bool // requires a project (that exists)
	admin   bool // requires an admin key
	// anonymous: no signature (web tracking); the handler decides
	// whether the logstore accepts it. Requires a project.
	anonymous bool
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func newRequestID() string {
	// 24 upper-case hex digits, like the service's request ids.
	return strings.ToUpper(fmt.Sprintf("%016x%08x", rand.Uint64(), rand.Uint32()))
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := a.now()
	id := newRequestID()
	h := w.Header()
	h.Set(protocol.HeaderRequestID, id)
	h.Set(protocol.HeaderLogTime, strconv.FormatInt(start.Unix(), 10))
	sw := &statusWriter{ResponseWriter: w}

	switch r.URL.Path {
	case "/healthz":
		sw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(sw, "ok\n")
		return
	case "/metrics":
		if a.metricH != nil {
			if !a.metricsAllowed(r) {
				sw.Header().Set("WWW-Authenticate", `Bearer realm="sluice metrics"`)
				protocol.WriteError(sw, id, protocol.NewError(protocol.CodeUnauthorized,
					"/metrics needs the metrics token: send Authorization: Bearer <token> (the server's --metrics-token)"))
				return
			}
			a.metricH.ServeHTTP(sw, r)
			return
		}
	}

	q := &request{r: r, w: sw, id: id, received: start, api: "Unknown"}
	err := a.serve(r.Context(), q)
	if err != nil {
		e := protocol.AsError(err)
		if e.HTTPStatus >= 500 {
			a.log.Error("request failed", "requestId", id, "api", q.api, "project", q.project, "err", err)
		}
		if q.api == "PutLogs" {
			a.metrics.rejectedLogs.WithLabelValues(string(e.Code)).Inc()
		}
		if e.HTTPStatus == http.StatusServiceUnavailable {
			sw.Header().Set("Retry-After", retryAfterSeconds)
		}
		protocol.WriteError(sw, id, e)
	}
	elapsed := a.now().Sub(start)
	code := ""
	if err != nil {
		code = string(protocol.CodeOf(protocol.AsError(err)))
	}
	a.metrics.requests.WithLabelValues(q.api, code).Inc()
	a.metrics.duration.WithLabelValues(q.api).Observe(elapsed.Seconds())
	attrs := []slog.Attr{
		slog.String("requestId", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("api", q.api), slog.String("project", q.project), slog.String("accessKeyId", q.key.ID),
		slog.Int("status", sw.status), slog.String("code", code), slog.Int("requestBytes", len(q.body)),
		slog.Int64("responseBytes", sw.bytes), slog.Duration("elapsed", elapsed), slog.String("remote", r.RemoteAddr),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", protocol.AsError(err).Message))
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "access", attrs...)
}

// metricsAllowed reports whether r may read /metrics.
func (a *API) metricsAllowed(r *http.Request) bool {
	if a.cfg.MetricsToken == "" {
		return true
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(a.cfg.MetricsToken)) == 1
}

func (a *API) serve(ctx context.Context, q *request) error {
	project, err := a.projectOf(q.r)
	if err != nil {
		return err
	}
	q.project = project
	rt, vars, err := a.match(q.r.Method, q.r.URL.Path, q.r.URL.Query(), project != "")
	if err != nil {
		return err
	}
	q.api, q.vars = rt.api, vars
	if pp := vars["pathProject"]; pp != "" {
		switch {
		case project == "":
			if err := validProjectName(pp); err != nil {
				return err
			}
			q.project, project = pp, pp
		case pp != project:
			return protocol.Errorf(protocol.CodeParameterInvalid, "project %q in the path differs from project %q of the request", pp, project)
		}
	}

	if rt.anonymous {
		// Web tracking: unsigned by design; the project must exist and the
		// body is still held to the size limits and the budget.
		if project == "" {
			return a.noProject()
		}
		if _, err := a.cfg.Meta.GetProject(ctx, project); err != nil {
			return a.metaErr(err)
		}
		return a.readBodyAndServe(ctx, q, rt, false)
	}
	// Everything up to the body is checked from the headers: the body is
	// read for signed, permitted requests only (bodies.go).
	key, err := a.cfg.Auth.AuthenticateHeaders(q.r)
	if err != nil {
		return err
	}
	q.key = key
	if rt.admin && !key.Admin {
		return protocol.Errorf(protocol.CodeUnauthorized, "access key %q is not an admin key: %s needs one", key.ID, rt.api)
	}
	if rt.project {
		if project == "" {
			return a.noProject()
		}
		if !key.Allows(project, rt.perm) {
			return protocol.Errorf(protocol.CodeUnauthorized,
				"access key %q has no %s permission on project %q", key.ID, rt.perm, project)
		}
		if _, err := a.cfg.Meta.GetProject(ctx, project); err != nil {
			return a.metaErr(err)
		}
	}
	return a.readBodyAndServe(ctx, q, rt, true)
}

// readBodyAndServe reads q's body within the size limits and the body
// budget, checks it against the signature when signed, and runs the route.
func (a *API) readBodyAndServe(ctx context.Context, q *request, rt route, signed bool) error {
	if err := a.checkDeclaredSizes(q.r); err != nil {
		return err
	}
	release, err := a.reserveBody(ctx, q.r)
	if err != nil {
		return err
	}
	defer release()
	a.setBodyDeadline(q)
	buf := a.getBuf()
	defer a.putBuf(buf)
	body, err := a.readBody(q.r, (*buf)[:0])
	*buf = body[:0]
	if err != nil {
		return err
	}
	q.body = body
	// The body is in: lift the read deadline, or the connection's
	// background read would hit it during a long query and cancel the
	// request's context (a query has its own QueryTimeout).
	a.clearReadDeadline(q)
	if signed {
		if err := a.cfg.Auth.CheckBody(q.r, body); err != nil {
			return err
		}
	}
	return rt.h(ctx, q)
}

func (a *API) noProject() error {
	if a.cfg.BaseDomain == "" {
		return protocol.NewError(protocol.CodeInvalidHost,
			"no project: send the x-log-project header (this server has no --base-domain, so project host names are not recognised)")
	}
	return protocol.Errorf(protocol.CodeInvalidHost,
		"no project: address the request to {project}.%s or send the x-log-project header", a.cfg.BaseDomain)
}

// projectOf returns the request's project: x-log-project, else the Host
// name minus the base domain; "" when neither names one.
func (a *API) projectOf(r *http.Request) (string, error) {
	if p := strings.TrimSpace(r.Header.Get(protocol.HeaderProject)); p != "" {
		if err := validProjectName(p); err != nil {
			return "", err
		}
		return p, nil
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	// Clients configured with an IP endpoint (Logtail, the SDKs, sluice-agent)
	// still put the project in front of it: {project}.10.0.0.5. No DNS can
	// serve such names, so they are unambiguous with or without a base domain.
	if label, rest, ok := strings.Cut(host, "."); ok && net.ParseIP(rest) != nil && net.ParseIP(host) == nil {
		if err := validProjectName(label); err != nil {
			return "", protocol.Errorf(protocol.CodeInvalidHost, "host %q: %s", r.Host, protocol.AsError(err).Message)
		}
		return label, nil
	}
	if a.cfg.BaseDomain == "" {
		return "", nil
	}
	if host == a.cfg.BaseDomain {
		return "", nil
	}
	p, ok := strings.CutSuffix(host, "."+a.cfg.BaseDomain)
	if !ok {
		// An IP or another name: not project-addressed.
		return "", nil
	}
	if err := validProjectName(p); err != nil {
		return "", protocol.Errorf(protocol.CodeInvalidHost, "host %q: %s", r.Host, protocol.AsError(err).Message)
	}
	return p, nil
}

func (a *API) getBuf() *[]byte {
	if b, ok := a.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (a *API) putBuf(b *[]byte) {
	if cap(*b) > 4*protocol.MaxRawBodySize {
		return // do not pin outsized buffers
	}
	a.bufs.Put(b)
}

// readBody reads the body into dst, refusing more than MaxBodyBytes
// without reading it all.
func (a *API) readBody(r *http.Request, dst []byte) ([]byte, error) {
	limit := a.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return dst, protocol.Errorf(protocol.CodePostBodyTooLarge,
			"request body of %d bytes exceeds the %d-byte limit: send smaller batches", r.ContentLength, limit)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return dst, nil
	}
	if r.ContentLength > 0 && int64(cap(dst)) < r.ContentLength {
		dst = make([]byte, 0, r.ContentLength)
	}
	lr := io.LimitReader(r.Body, limit+1)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := lr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > limit {
			return dst, protocol.Errorf(protocol.CodePostBodyTooLarge,
				"request body exceeds the %d-byte limit: send smaller batches", limit)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, protocol.Errorf(protocol.CodePostBodyInvalid, "read request body: %v", err)
		}
	}
}

// metaErr maps metadata errors to Log Service errors.
func (a *API) metaErr(err error) error {
	var nf *meta.NotFoundError
	if errors.As(err, &nf) {
		code := map[meta.Kind]protocol.ErrorCode{
			meta.KindProject:       protocol.CodeProjectNotExist,
			meta.KindLogstore:      protocol.CodeLogStoreNotExist,
			meta.KindIndex:         protocol.CodeIndexConfigNotExist,
			meta.KindMachineGroup:  protocol.CodeMachineGroupNotExist,
			meta.KindConfig:        protocol.CodeConfigNotExist,
			meta.KindConsumerGroup: protocol.CodeConsumerGroupNotExist,
			meta.KindSavedSearch:   "SavedSearchNotExist",
			meta.KindDashboard:     "DashboardNotExist",
			alert.Kind:             "JobNotExist",
		}[nf.Kind]
		if code == "" {
			return &protocol.Error{HTTPStatus: http.StatusNotFound, Code: "AccessKeyNotExist", Message: nf.Error(), Err: err}
		}
		return &protocol.Error{HTTPStatus: http.StatusNotFound, Code: code, Message: nf.Error(), Err: err}
	}
	var ee *meta.ExistsError
	if errors.As(err, &ee) {
		code := map[meta.Kind]protocol.ErrorCode{
			meta.KindProject:       protocol.CodeProjectAlreadyExist,
			meta.KindLogstore:      protocol.CodeLogStoreAlreadyExist,
			meta.KindIndex:         "IndexAlreadyExist",
			meta.KindMachineGroup:  "MachineGroupAlreadyExist",
			meta.KindConfig:        "ConfigAlreadyExist",
			meta.KindConsumerGroup: protocol.CodeConsumerGroupAlreadyExist,
			meta.KindSavedSearch:   "SavedSearchAlreadyExist",
			meta.KindDashboard:     "DashboardAlreadyExist",
			alert.Kind:             "JobAlreadyExist",
		}[ee.Kind]
		return &protocol.Error{HTTPStatus: http.StatusBadRequest, Code: code, Message: ee.Error(), Err: err}
	}
	return fmt.Errorf("metadata: %w", err)
}

// CodeQueryLimitExceeded answers a query that went over one of the
// server's query limits (text length, CTEs, joins, value size, memory,
// result size); the message names the limit. 400: the same query would
// hit it again.
const CodeQueryLimitExceeded protocol.ErrorCode = "QueryLimitExceeded"

// retryAfterSeconds is the Retry-After a 503 carries.
const retryAfterSeconds = "1"

// storeErr maps log store errors to Log Service errors.
func storeErr(err error) error {
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
		return err
	case errors.Is(err, store.ErrOverloaded):
		why := strings.TrimPrefix(strings.TrimSuffix(err.Error(), ": "+store.ErrOverloaded.Error()), "duckdb store: ")
		return &protocol.Error{HTTPStatus: http.StatusServiceUnavailable, Code: protocol.CodeServerBusy,
			Message: "the server is busy (" + why + "): retry in " + retryAfterSeconds + "s", Err: err}
	case errors.Is(err, store.ErrLogstoreNotFound):
		return &protocol.Error{HTTPStatus: http.StatusNotFound, Code: protocol.CodeLogStoreNotExist, Message: err.Error(), Err: err}
	case errors.Is(err, store.ErrQueryLimit):
		return &protocol.Error{HTTPStatus: http.StatusBadRequest, Code: CodeQueryLimitExceeded, Message: err.Error(), Err: err}
	case errors.Is(err, store.ErrInvalidQuery):
		return &protocol.Error{HTTPStatus: http.StatusBadRequest, Code: protocol.CodeParameterInvalid, Message: err.Error(), Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &protocol.Error{HTTPStatus: http.StatusServiceUnavailable, Code: protocol.CodeServerBusy,
			Message: "request cancelled or timed out: retry", Err: err}
	}
	return fmt.Errorf("log store: %w", err)
}

func writeJSON(q *request, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	return writeRawJSON(q, b)
}

func writeRawJSON(q *request, b []byte) error {
	q.w.Header().Set("Content-Type", protocol.ContentTypeJSON)
	q.w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	q.w.WriteHeader(http.StatusOK)
	_, _ = q.w.Write(b)
	return nil
}

func writeEmpty(q *request) error {
	q.w.Header().Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// decodeJSON decodes a JSON request body (decompressing it when the
// client compressed it) into v.
func (a *API) decodeJSON(q *request, v any) error {
	body, err := a.plainBody(q)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return protocol.NewError(protocol.CodePostBodyInvalid, "empty request body: send a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return protocol.Errorf(protocol.CodePostBodyInvalid, "request body is not valid JSON for %s: %v", q.api, err)
	}
	return nil
}

// plainBody returns the body decompressed per x-log-compresstype.
func (a *API) plainBody(q *request) ([]byte, error) {
	ctName := q.r.Header.Get(protocol.HeaderCompressType)
	if ctName == "" {
		return q.body, nil
	}
	ct, err := protocol.ParseCompressType(ctName)
	if err != nil {
		return nil, err
	}
	raw, err := rawSizeHeader(q.r)
	if err != nil {
		return nil, err
	}
	return protocol.Decompress(nil, q.body, ct, raw, a.cfg.MaxRawBytes)
}

// rawSizeHeader parses x-log-bodyrawsize; -1 when absent.
func rawSizeHeader(r *http.Request) (int, error) {
	s := r.Header.Get(protocol.HeaderBodyRawSize)
	if s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, protocol.Errorf(protocol.CodeInvalidBodyRawSize, "%s %q is not a non-negative integer", protocol.HeaderBodyRawSize, s)
	}
	return n, nil
}

func pageOf(q *request) (meta.Page, error) {
	var p meta.Page
	var err error
	if s := q.query("offset"); s != "" {
		if p.Offset, err = strconv.Atoi(s); err != nil || p.Offset < 0 {
			return p, protocol.Errorf(protocol.CodeParameterInvalid, "offset %q must be a non-negative integer", s)
		}
	}
	if s := q.query("size"); s != "" {
		if p.Size, err = strconv.Atoi(s); err != nil || p.Size < 0 {
			return p, protocol.Errorf(protocol.CodeParameterInvalid, "size %q must be a non-negative integer", s)
		}
	}
	if p.Size == 0 || p.Size > 500 {
		p.Size = 500
	}
	return p, nil
}
