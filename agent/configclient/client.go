// Package configclient is sluice-agent's side of central configuration: it
// heartbeats to the server (LoongCollector ConfigServer v2 protocol,
// protocol/configpb), receives the collection configs applied to the
// machine groups the agent belongs to, hands them to the agent runtime as a
// config source of its own (supervisor.Agent.ApplySource; local config
// directory configs keep running beside them), reports each config's status
// (applied, or failed with the message) in the next heartbeat, and caches
// what it received at user_config_file_path so that a restart while the
// server is down keeps collecting.
//
// Configs from the server are trusted less than local files: a config whose
// logPath is outside the allowed roots (DefaultAllowedRoots, or the instance
// config's allowed_log_roots), or that sends to an endpoint the instance
// config does not name, is refused and reported as failed.
//
// Identity: the agent's IP, hostname and user-defined ids
// (ALIYUN_LOGTAIL_USER_DEFINED_ID, sent as tags named user_defined_id), and
// an instance id kept in the cache file so it survives restarts.
package configclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/supervisor"
	"github.com/sluicelog/sluice/logconfig"
	"github.com/sluicelog/sluice/protocol"
	pb "github.com/sluicelog/sluice/protocol/configpb"
)

// Source is the runtime source name the server's configs are applied under.
const Source = "configserver"

// AgentType is sent in every heartbeat.
const AgentType = "sluice"

// pathPrefix makes the runtime paths of server configs distinct from any
// file of the config directory.
const pathPrefix = "configserver:/"

// PathOf is the runtime path of the server config name (runtime status
// reports it as ConfigStatus.Path).
func PathOf(name string) string { return pathPrefix + name + ".json" }

// Applier is the part of the agent runtime the client drives
// (*supervisor.Agent).
type Applier interface {
	ApplySource(ctx context.Context, source string, files []supervisor.ConfigFile)
	Status() supervisor.Status
}

// Config configures the client.
type Config struct {
	// Endpoint is the server: host:port or http(s)://host[:port].
	Endpoint string
	// AccessKeyID and AccessKeySecret sign every request (the server
	// verifies them like any API call).
	AccessKeyID, AccessKeySecret string
	// Interval between heartbeats (10s when 0).
	Interval time.Duration
	// Timeout bounds one request (the interval, at most 30s, when 0).
	Timeout time.Duration
	// CachePath is the instance's user_config_file_path.
	CachePath string
	// Identity.
	IP, Hostname   string
	UserDefinedIDs []string
	// Version is the agent's version, shown by ListMachines.
	Version string
	// AllowedRoots are the directories server configs may read
	// (DefaultAllowedRoots when nil).
	AllowedRoots []string
	// AllowedEndpoints are the servers a server config's
	// outputDetail.endpoint may name (the instance's data_server_list and
	// config_server_address); Endpoint is always allowed. A config without
	// an endpoint uses the agent's default and is always accepted.
	AllowedEndpoints []string
	// TLS is the instance config's tls section (CA file, client
	// certificate, server name, insecure_skip_verify) for https servers.
	TLS logconfig.TLS
	// HTTPClient overrides the HTTP client (tests, custom TLS).
	HTTPClient *http.Client
}

// Validate reports a configuration the client cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.Endpoint == "":
		return errors.New("configserver: the server address is required (--config-server or config_server_address)")
	case c.AccessKeyID == "" || c.AccessKeySecret == "":
		return errors.New("configserver: access_key_id and access_key_secret are required: the server only hands configs to agents that sign their heartbeats")
	case c.CachePath == "":
		return errors.New("configserver: user_config_file_path is empty: the agent caches received configs there")
	case c.Interval < 0 || c.Timeout < 0:
		return errors.New("configserver: interval and timeout must not be negative")
	}
	return nil
}

// Settings carry the logger and metrics registerer.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

type held struct {
	version int64
	detail  []byte
}

// Client heartbeats to the server and applies what it answers.
type Client struct {
	cfg     Config
	log     *slog.Logger
	applier Applier
	http    *http.Client
	signer  protocol.Signer
	url     string
	started time.Time

	mu         sync.Mutex
	instanceID string
	configs    map[string]held
	seq        uint64
	lastErr    string
	lastOKAt   time.Time

	heartbeats *prometheus.CounterVec
	lastOK     prometheus.Gauge
}

// New returns a client; Run starts it.
func New(cfg Config, set Settings, applier Applier) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if applier == nil {
		return nil, errors.New("configserver: an Applier (the agent runtime) is required")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = min(cfg.Interval, 30*time.Second)
	}
	if cfg.AllowedRoots == nil {
		cfg.AllowedRoots = DefaultAllowedRoots
	}
	base := cfg.Endpoint
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	c := &Client{
		cfg: cfg, log: set.Logger, applier: applier, http: cfg.HTTPClient,
		signer:  protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: cfg.AccessKeyID, AccessKeySecret: cfg.AccessKeySecret}},
		url:     strings.TrimSuffix(base, "/"),
		started: time.Now(),
		configs: map[string]held{},
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_agent_configserver_heartbeats_total", Help: "Heartbeats to the config server by result (ok, error).",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_agent_configserver_last_success_timestamp_seconds", Help: "When the config server last answered a heartbeat.",
		}),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.http == nil {
		tlsCfg, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		c.http = &http.Client{Transport: tr}
	}
	if set.Registerer != nil {
		for _, col := range []prometheus.Collector{c.heartbeats, c.lastOK} {
			if err := set.Registerer.Register(col); err != nil {
				return nil, fmt.Errorf("configserver: register metrics: %w", err)
			}
		}
	}
	return c, nil
}

// ConfigStatus is one server config as the agent reports it.
type ConfigStatus struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
	Status  string `json:"status"` // APPLYING | APPLIED | FAILED
	Message string `json:"message,omitempty"`
}

// Status is the central config state, for the agent's /status.
type Status struct {
	Server      string         `json:"server"`
	InstanceID  string         `json:"instanceId"`
	LastSuccess time.Time      `json:"lastSuccess,omitzero"`
	LastError   string         `json:"lastError,omitempty"`
	Configs     []ConfigStatus `json:"configs"`
}

// Connection is Status without the per-config statuses: the server and the
// last heartbeat's outcome only. It does not ask the applier, so the
// applier's own status (supervisor.Agent's central-status hook) may call it;
// Status from there recurses without end.
func (c *Client) Connection() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Server: c.url, InstanceID: c.instanceID, LastSuccess: c.lastOKAt, LastError: c.lastErr}
}

// Status returns what the next heartbeat would report, the last successful
// heartbeat and the last error (empty once the server answers again).
func (c *Client) Status() Status {
	infos := c.statuses()
	c.mu.Lock()
	st := Status{Server: c.url, InstanceID: c.instanceID, LastSuccess: c.lastOKAt, LastError: c.lastErr}
	c.mu.Unlock()
	st.Configs = make([]ConfigStatus, 0, len(infos))
	for _, i := range infos {
		st.Configs = append(st.Configs, ConfigStatus{Name: i.Name, Version: i.Version, Status: i.Status.String(), Message: i.Message})
	}
	return st
}

func tlsConfig(t logconfig.TLS) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // InsecureSkipVerify only when the operator sets tls.insecure_skip_verify
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("configserver: tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("configserver: tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("configserver: tls.cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// InstanceID is the id the agent heartbeats with (known once Run started).
func (c *Client) InstanceID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.instanceID
}

// Run calls Start, then heartbeats every Interval until ctx ends. A server
// that cannot be reached is logged (once per distinct error) and retried;
// what runs keeps running. Run returns nil when ctx ends, or at once with
// Start's error.
func (c *Client) Run(ctx context.Context) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		changed := c.Heartbeat(ctx)
		// ±10% jitter: agents restarted together (a node reboot, a
		// rollout) do not keep heartbeating in lockstep.
		next := c.cfg.Interval + time.Duration((mrand.Float64()-0.5)*0.2*float64(c.cfg.Interval))
		if changed {
			// Report the new configs' status at once rather than one
			// interval later.
			next = min(next, 200*time.Millisecond)
		}
		t.Reset(next)
	}
}

// Start loads the cache (instance id and the configs last received) and
// applies the cached configs, without contacting the server. A damaged
// cache is set aside (path.damaged) and logged; Start fails only when the
// cache cannot be read or written at all.
func (c *Client) Start(ctx context.Context) error {
	cache, err := loadCache(c.cfg.CachePath)
	var damaged *damagedError
	if errors.As(err, &damaged) {
		c.log.Error("config cache unreadable; starting without it", "err", err)
		if rerr := os.Rename(c.cfg.CachePath, c.cfg.CachePath+".damaged"); rerr != nil {
			return fmt.Errorf("set the damaged config cache aside: %w", rerr)
		}
		cache, err = &cacheFile{}, nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.instanceID = cache.InstanceID
	if c.instanceID == "" {
		c.instanceID = newInstanceID()
	}
	for _, cc := range cache.Configs {
		c.configs[cc.Name] = held{version: cc.Version, detail: []byte(cc.Detail)}
	}
	n := len(c.configs)
	c.mu.Unlock()
	if cache.InstanceID == "" {
		if err := c.save(); err != nil {
			return err
		}
	}
	if n > 0 {
		c.log.Info("applying configs cached from the config server", "configs", n, "cache", c.cfg.CachePath, "saved_at", cache.SavedAt)
	}
	c.apply(ctx)
	return nil
}

// Heartbeat sends one heartbeat, applies the answer and reports whether
// the set of configs changed. Errors are logged and counted.
func (c *Client) Heartbeat(ctx context.Context) bool {
	changed, err := c.heartbeat(ctx)
	if err != nil {
		c.heartbeats.WithLabelValues("error").Inc()
		c.mu.Lock()
		repeat := c.lastErr == err.Error()
		c.lastErr = err.Error()
		c.mu.Unlock()
		if !repeat && ctx.Err() == nil {
			c.log.Error("config server heartbeat failed; the configs already received keep collecting", "server", c.url, "err", err)
		}
		return changed
	}
	c.heartbeats.WithLabelValues("ok").Inc()
	c.lastOK.SetToCurrentTime()
	c.mu.Lock()
	recovered := c.lastErr != ""
	c.lastErr = ""
	c.lastOKAt = time.Now()
	c.mu.Unlock()
	if recovered {
		c.log.Info("config server reachable again", "server", c.url)
	}
	return changed
}

func (c *Client) heartbeat(ctx context.Context) (bool, error) {
	c.mu.Lock()
	c.seq++
	req := pb.HeartbeatRequest{
		RequestID:    randomID(),
		SequenceNum:  c.seq,
		Capabilities: pb.AgentAcceptsPipelineConfig,
		InstanceID:   []byte(c.instanceID),
		AgentType:    AgentType,
		Attributes:   pb.AgentAttributes{Version: c.cfg.Version, IP: c.cfg.IP, Hostname: c.cfg.Hostname},
		StartupTime:  c.started.Unix(),
		Flags:        pb.RequestFullState,
	}
	c.mu.Unlock()
	for _, id := range c.cfg.UserDefinedIDs {
		req.Tags = append(req.Tags, pb.AgentGroupTag{Name: "user_defined_id", Value: id})
	}
	req.PipelineConfigs = c.statuses()
	req.RunningStatus = runningStatus(req.PipelineConfigs)

	var resp pb.HeartbeatResponse
	if err := c.call(ctx, pb.PathHeartbeat, req.Marshal(nil), resp.Unmarshal); err != nil {
		return false, err
	}
	if resp.CommonResponse.Status != 0 {
		return false, fmt.Errorf("server refused the heartbeat: status %d: %s", resp.CommonResponse.Status, resp.CommonResponse.ErrorMessage)
	}
	if len(resp.PipelineConfigUpdates) == 0 {
		return false, nil
	}
	// Updates without detail are fetched (servers that set
	// FetchPipelineConfigDetail); Sluice's server sends details inline.
	var fetch []pb.ConfigInfo
	for _, u := range resp.PipelineConfigUpdates {
		if u.Version != pb.VersionDeleted && len(u.Detail) == 0 {
			fetch = append(fetch, pb.ConfigInfo{Name: u.Name, Version: u.Version})
		}
	}
	details := map[string][]byte{}
	if len(fetch) > 0 {
		freq := pb.FetchConfigRequest{RequestID: randomID(), InstanceID: []byte(c.InstanceID()), ReqConfigs: fetch}
		var fresp pb.FetchConfigResponse
		if err := c.call(ctx, pb.PathFetchPipelineConfig, freq.Marshal(nil), fresp.Unmarshal); err != nil {
			return false, fmt.Errorf("fetch config details: %w", err)
		}
		for _, d := range fresp.ConfigDetails {
			details[d.Name] = d.Detail
		}
	}
	changed := false
	c.mu.Lock()
	for _, u := range resp.PipelineConfigUpdates {
		switch {
		case u.Version == pb.VersionDeleted:
			if _, ok := c.configs[u.Name]; ok {
				delete(c.configs, u.Name)
				changed = true
				c.log.Info("config removed by the config server", "config", u.Name)
			}
		default:
			detail := u.Detail
			if len(detail) == 0 {
				detail = details[u.Name]
			}
			if len(detail) == 0 {
				c.log.Warn("config server announced a config without its content; asking again next heartbeat", "config", u.Name)
				continue
			}
			if old, ok := c.configs[u.Name]; ok && old.version == u.Version && bytes.Equal(old.detail, detail) {
				continue
			}
			c.configs[u.Name] = held{version: u.Version, detail: detail}
			changed = true
			c.log.Info("config received from the config server", "config", u.Name, "version", u.Version)
		}
	}
	c.mu.Unlock()
	if changed {
		// Cache first: a crash right after applying must not lose the set.
		if err := c.save(); err != nil {
			c.log.Error("configs not cached; they apply now but a restart without the server would not have them", "err", err)
		}
		c.apply(ctx)
	}
	return changed, nil
}

// call posts a signed protobuf body and decodes the protobuf answer.
func (c *Client) call(ctx context.Context, path string, body []byte, decode func([]byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set(protocol.HeaderContentType, pb.ContentType)
	r.Header.Set(protocol.HeaderAPIVersion, protocol.APIVersion)
	r.Header.Set(protocol.HeaderBodyRawSize, fmt.Sprint(len(body)))
	if err := c.signer.SignRequest(r, body, time.Now()); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	res, err := c.http.Do(r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Code    string `json:"errorCode"`
			Message string `json:"errorMessage"`
		}
		if json.Unmarshal(data, &e) == nil && e.Code != "" {
			hint := ""
			if res.StatusCode == http.StatusUnauthorized {
				hint = " (check access_key_id/access_key_secret in the instance config, and that the key may read the machine groups' project)"
			}
			return fmt.Errorf("%s: HTTP %d %s: %s%s", path, res.StatusCode, e.Code, e.Message, hint)
		}
		return fmt.Errorf("%s: HTTP %d: %.200s", path, res.StatusCode, data)
	}
	if err := decode(data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// apply hands the held configs to the runtime, refusing those outside the
// allowed roots.
func (c *Client) apply(ctx context.Context) {
	c.mu.Lock()
	files := make([]supervisor.ConfigFile, 0, len(c.configs))
	for name, h := range c.configs {
		f := supervisor.ConfigFile{Path: PathOf(name), Hash: sha256.Sum256(h.detail)}
		if err := checkConfig(name, h.detail, c.cfg.AllowedRoots, append([]string{c.cfg.Endpoint}, c.cfg.AllowedEndpoints...)); err != nil {
			f.Err = fmt.Errorf("config %q from the config server refused: %w", name, err)
		} else {
			f.Data = h.detail
		}
		files = append(files, f)
	}
	c.mu.Unlock()
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	c.applier.ApplySource(ctx, Source, files)
}

func checkConfig(name string, detail []byte, roots, endpoints []string) error {
	var head struct {
		ConfigName string `json:"configName"`
	}
	if err := json.Unmarshal(detail, &head); err != nil {
		return fmt.Errorf("not a Logtail collection config (JSON): %v", err)
	}
	if head.ConfigName != name {
		return fmt.Errorf("configName %q in the body differs from the name %q the server sent it under", head.ConfigName, name)
	}
	if err := CheckPaths(detail, roots); err != nil {
		return err
	}
	return CheckEndpoint(detail, endpoints)
}

// statuses reports every held config: APPLIED when its pipeline runs the
// held version, FAILED with the runtime's message, APPLYING otherwise.
func (c *Client) statuses() []pb.ConfigInfo {
	st := c.applier.Status()
	byPath := make(map[string]supervisor.ConfigStatus, len(st.Configs))
	for _, s := range st.Configs {
		byPath[s.Path] = s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]pb.ConfigInfo, 0, len(c.configs))
	for name, h := range c.configs {
		info := pb.ConfigInfo{Name: name, Version: h.version, Status: pb.StatusApplying}
		sum := sha256.Sum256(h.detail)
		if s, ok := byPath[PathOf(name)]; ok && s.Version == fmt.Sprintf("%x", sum[:6]) {
			switch s.State {
			case supervisor.StateRunning:
				info.Status = pb.StatusApplied
			case supervisor.StateFailed:
				info.Status, info.Message = pb.StatusFailed, s.Message
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func runningStatus(cs []pb.ConfigInfo) string {
	failed := 0
	for _, c := range cs {
		if c.Status == pb.StatusFailed {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Sprintf("%d of %d configs failed", failed, len(cs))
	}
	return "ok"
}

func (c *Client) save() error {
	c.mu.Lock()
	cf := &cacheFile{InstanceID: c.instanceID, SavedAt: time.Now().UTC()}
	for name, h := range c.configs {
		cf.Configs = append(cf.Configs, cachedConfig{Name: name, Version: h.version, Detail: string(h.detail)})
	}
	c.mu.Unlock()
	return saveCache(c.cfg.CachePath, cf)
}

func randomID() []byte {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return []byte(fmt.Sprintf("%x", b))
}
