// Package configserver hands collection configs to agents by machine group
// and keeps track of the agents: it serves LoongCollector's ConfigServer v2
// protocol (protocol/configpb; POST /Agent/Heartbeat and
// /Agent/FetchPipelineConfig) and answers ListMachines for the Log Service
// API.
//
// An agent is authenticated by the access key that signed its heartbeat
// (server/auth, the same signatures as every other API call) and sees the
// machine groups of the projects that key may read. A group matches the
// agent by IP (machineIdentifyType "ip") or by one of its user-defined ids
// ("userdefined"; the agent sends them as tags named user_defined_id). The
// configs applied to the matching groups are the agent's desired set; each
// heartbeat answers with what differs from the set the agent reported
// (new or changed configs with their detail, removed ones with version -1).
//
// The registry of agents (last heartbeat, version, IP, identities, config
// statuses) lives in memory and, when Config.StatePath is set, is written to
// a JSON file every few seconds and on Close, so ListMachines survives a
// server restart. With several servers on one PostgreSQL (Config.Shared),
// each also writes the agents that heartbeated it there every SaveInterval,
// and ListMachines merges what every server wrote: an agent appears on
// every node within one interval, whichever node its heartbeats reach. The
// config diff of a heartbeat stays per node (an agent that moves to another
// node is asked for its full state once).
package configserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/internal/fsutil"
	"github.com/sluicelog/sluice/protocol"
	pb "github.com/sluicelog/sluice/protocol/configpb"
	"github.com/sluicelog/sluice/server/meta"
)

// TagUserDefinedID is the agent tag that carries one user-defined id
// (ALIYUN_LOGTAIL_USER_DEFINED_ID); an agent sends one tag per id.
const TagUserDefinedID = "user_defined_id"

// maxBodyBytes bounds a heartbeat: a few hundred configs' statuses fit in
// a few KiB.
const maxBodyBytes = 4 << 20

// Meta is the part of the metadata store the config server reads
// (meta.Store satisfies it).
type Meta interface {
	ListProjects(ctx context.Context, page meta.Page) ([]meta.Project, int, error)
	ListMachineGroups(ctx context.Context, project string, page meta.Page) ([]string, int, error)
	GetMachineGroup(ctx context.Context, project, name string) (meta.MachineGroup, error)
	AppliedConfigs(ctx context.Context, project, group string) ([]string, error)
	GetConfig(ctx context.Context, project, name string) (meta.Config, error)
}

// Authenticator verifies a request's signature from its headers, then
// its body against the signed digest (auth.Authenticator).
type Authenticator interface {
	AuthenticateHeaders(r *http.Request) (meta.AccessKey, error)
	CheckBody(r *http.Request, body []byte) error
}

// Config configures the config server.
type Config struct {
	Meta Meta
	Auth Authenticator
	// StatePath is the JSON file the agent registry is kept in ("" = memory
	// only).
	StatePath string
	// Expiry drops agents silent for longer (24h when 0).
	Expiry time.Duration
	// SaveInterval is the most often the registry is written (5s when 0).
	SaveInterval time.Duration
	// Shared keeps the registry where every server sees it (PostgreSQL
	// with --meta postgres://); nil: this server's own agents only.
	Shared     SharedRegistry
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// SharedRegistry stores agent records for all servers; configserver owns
// the record encoding (JSON).
type SharedRegistry interface {
	// PutAgents stores agents (a record replaces an older one of the same
	// instance) and drops those whose last heartbeat is before expired.
	PutAgents(ctx context.Context, agents []SharedAgent, expired time.Time) error
	// Agents returns the agents heard since.
	Agents(ctx context.Context, since time.Time) ([]SharedAgent, error)
}

// SharedAgent is one agent record in a SharedRegistry.
type SharedAgent struct {
	InstanceID    string
	LastHeartbeat time.Time
	Record        []byte // JSON
}

// Server is the config server: an http.Handler for the /Agent/ paths and
// the machine list for ListMachines.
type Server struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	agents   map[string]*agentRecord // instance id → record
	lastSave time.Time
	dirty    bool

	// For Shared: instances heard since the last write, serialised writes.
	sharedDirty map[string]bool
	lastShared  time.Time
	sharedMu    sync.Mutex

	heartbeats *prometheus.CounterVec
	agentsG    prometheus.GaugeFunc
}

// ConfigState is what an agent last reported about one config.
type ConfigState struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
	Status  string `json:"status"` // UNSET | APPLYING | APPLIED | FAILED
	Message string `json:"message,omitempty"`
}

// Machine is one agent as ListMachines shows it.
type Machine struct {
	InstanceID     string        `json:"instanceId"`
	IP             string        `json:"ip"`
	Hostname       string        `json:"hostname"`
	UserDefinedIDs []string      `json:"userDefinedIds"`
	AgentType      string        `json:"agentType"`
	Version        string        `json:"version"`
	StartupTime    int64         `json:"startupTime"`
	LastHeartbeat  time.Time     `json:"lastHeartbeat"`
	Configs        []ConfigState `json:"configs"`
}

type agentRecord struct {
	Machine
	// AccessKeyID signed the last heartbeat; Projects are those it could
	// read then (nil with Admin).
	AccessKeyID string   `json:"accessKeyId"`
	Admin       bool     `json:"admin,omitempty"`
	Projects    []string `json:"projects,omitempty"`
	Sequence    uint64   `json:"sequence"`
}

func (r *agentRecord) allows(project string) bool {
	return r.Admin || slices.Contains(r.Projects, project)
}

// New returns a server, loading the registry from StatePath when it exists.
func New(cfg Config) (*Server, error) {
	if cfg.Meta == nil || cfg.Auth == nil {
		return nil, errors.New("configserver: Meta and Auth are required")
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = 24 * time.Hour
	}
	if cfg.SaveInterval <= 0 {
		cfg.SaveInterval = 5 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, agents: map[string]*agentRecord{}, sharedDirty: map[string]bool{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.heartbeats = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_configserver_heartbeats_total", Help: "Agent heartbeats by result (ok, error).",
	}, []string{"result"})
	s.agentsG = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_configserver_agents", Help: "Agents known to the config server (heartbeat within the expiry).",
	}, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(len(s.agents))
	})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.heartbeats, s.agentsG} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("configserver: register metrics: %w", err)
			}
		}
	}
	if cfg.StatePath != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) load() error {
	data, err := os.ReadFile(s.cfg.StatePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("configserver: read agent registry: %w", err)
	}
	var recs []*agentRecord
	if err := json.Unmarshal(data, &recs); err != nil {
		// The registry is a cache of heartbeats: agents re-register within
		// one interval, so a damaged file is logged and replaced, not fatal.
		s.log.Warn("agent registry unreadable; starting empty (agents re-register on their next heartbeat)",
			"path", s.cfg.StatePath, "err", err)
		return nil
	}
	for _, r := range recs {
		if r != nil && r.InstanceID != "" {
			s.agents[r.InstanceID] = r
		}
	}
	return nil
}

// Close writes the registry (when StatePath is set) and the agents not yet
// written to the shared registry.
func (s *Server) Close() error {
	var errs []error
	if s.cfg.Shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.writeShared(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.StatePath != "" && s.dirty {
		errs = append(errs, s.saveLocked())
	}
	return errors.Join(errs...)
}

// writeShared writes the agents heard since the last write to the shared
// registry.
func (s *Server) writeShared(ctx context.Context) error {
	s.sharedMu.Lock()
	defer s.sharedMu.Unlock()
	s.mu.Lock()
	var batch []SharedAgent
	for id := range s.sharedDirty {
		r, ok := s.agents[id]
		if !ok {
			continue
		}
		data, err := json.Marshal(r)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("configserver: encode agent %s: %w", id, err)
		}
		batch = append(batch, SharedAgent{InstanceID: id, LastHeartbeat: r.LastHeartbeat, Record: data})
	}
	clear(s.sharedDirty)
	now := s.now()
	s.lastShared = now
	s.mu.Unlock()
	if err := s.cfg.Shared.PutAgents(ctx, batch, now.Add(-s.cfg.Expiry)); err != nil {
		// Heard again within an interval, so retried then.
		return fmt.Errorf("configserver: write agents to the shared registry: %w", err)
	}
	return nil
}

func (s *Server) saveLocked() error {
	recs := make([]*agentRecord, 0, len(s.agents))
	for _, r := range s.agents {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].InstanceID < recs[j].InstanceID })
	data, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.StatePath), 0o750); err != nil {
		return fmt.Errorf("configserver: save agent registry: %w", err)
	}
	if err := fsutil.WriteFile(s.cfg.StatePath, data, 0o600); err != nil {
		return fmt.Errorf("configserver: save agent registry: %w", err)
	}
	s.dirty = false
	s.lastSave = s.now()
	return nil
}

// ServeHTTP serves the /Agent/ paths.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(protocol.HeaderRequestID, strconv.FormatInt(s.now().UnixNano(), 36))
	w.Header().Set(protocol.HeaderLogTime, strconv.FormatInt(s.now().Unix(), 10))
	if r.Method != http.MethodPost {
		protocol.WriteError(w, "", &protocol.Error{HTTPStatus: http.StatusMethodNotAllowed, Code: protocol.CodeParameterInvalid,
			Message: r.Method + " " + r.URL.Path + ": the config server protocol uses POST"})
		return
	}
	switch r.URL.Path {
	case pb.PathHeartbeat, pb.PathHeartbeat + "/":
		s.serve(w, r, s.heartbeat)
	case pb.PathFetchPipelineConfig, pb.PathFetchPipelineConfig + "/":
		s.serve(w, r, s.fetchPipeline)
	case pb.PathFetchInstanceConfig, pb.PathFetchInstanceConfig + "/":
		// Instance configs are not managed centrally: an empty answer.
		s.serve(w, r, func(_ context.Context, _ meta.AccessKey, body []byte, _ string) ([]byte, error) {
			var req pb.FetchConfigRequest
			if err := req.Unmarshal(body); err != nil {
				return nil, protocol.Errorf(protocol.CodePostBodyInvalid, "%v", err)
			}
			return (&pb.FetchConfigResponse{RequestID: req.RequestID}).Marshal(nil), nil
		})
	default:
		protocol.WriteError(w, "", &protocol.Error{HTTPStatus: http.StatusNotFound, Code: protocol.CodeParameterInvalid,
			Message: "POST " + r.URL.Path + " is not a config server API: use " + pb.PathHeartbeat + " or " + pb.PathFetchPipelineConfig})
	}
}

type handler func(ctx context.Context, key meta.AccessKey, body []byte, remoteIP string) ([]byte, error)

func (s *Server) serve(w http.ResponseWriter, r *http.Request, h handler) {
	fail := func(err error) {
		s.heartbeats.WithLabelValues("error").Inc()
		e := protocol.AsError(err)
		if e.HTTPStatus >= 500 {
			s.log.Error("config server request failed", "path", r.URL.Path, "err", err)
		} else {
			s.log.Warn("config server request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", e.Message)
		}
		protocol.WriteError(w, "", e)
	}
	// The signature is checked from the headers first: the body of an
	// unsigned request is never read.
	key, err := s.cfg.Auth.AuthenticateHeaders(r)
	if err != nil {
		fail(err)
		return
	}
	if r.ContentLength > maxBodyBytes {
		fail(protocol.Errorf(protocol.CodePostBodyTooLarge, "body of %d bytes exceeds %d bytes", r.ContentLength, maxBodyBytes))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		fail(protocol.Errorf(protocol.CodePostBodyInvalid, "read body: %v", err))
		return
	}
	if len(body) > maxBodyBytes {
		fail(protocol.Errorf(protocol.CodePostBodyTooLarge, "body exceeds %d bytes", maxBodyBytes))
		return
	}
	if err := s.cfg.Auth.CheckBody(r, body); err != nil {
		fail(err)
		return
	}
	remote, _, _ := net.SplitHostPort(r.RemoteAddr)
	out, err := h(r.Context(), key, body, remote)
	if err != nil {
		fail(err)
		return
	}
	s.heartbeats.WithLabelValues("ok").Inc()
	w.Header().Set("Content-Type", pb.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func (s *Server) heartbeat(ctx context.Context, key meta.AccessKey, body []byte, remoteIP string) ([]byte, error) {
	var req pb.HeartbeatRequest
	if err := req.Unmarshal(body); err != nil {
		return nil, protocol.Errorf(protocol.CodePostBodyInvalid, "heartbeat is not a HeartbeatRequest protobuf: %v", err)
	}
	if len(req.InstanceID) == 0 {
		return nil, protocol.NewError(protocol.CodeParameterInvalid, "heartbeat without instance_id: every agent must send its unique instance id")
	}
	now := s.now()
	rec := &agentRecord{
		Machine: Machine{
			InstanceID:    string(req.InstanceID),
			IP:            req.Attributes.IP,
			Hostname:      req.Attributes.Hostname,
			AgentType:     req.AgentType,
			Version:       req.Attributes.Version,
			StartupTime:   req.StartupTime,
			LastHeartbeat: now.UTC().Truncate(time.Millisecond),
		},
		AccessKeyID: key.ID,
		Admin:       key.Admin,
		Sequence:    req.SequenceNum,
	}
	if rec.IP == "" {
		rec.IP = remoteIP
	}
	for _, t := range req.Tags {
		if t.Name == TagUserDefinedID && t.Value != "" && !slices.Contains(rec.UserDefinedIDs, t.Value) {
			rec.UserDefinedIDs = append(rec.UserDefinedIDs, t.Value)
		}
	}
	for p, perm := range key.Projects {
		if perm.Allows(meta.PermRead) {
			rec.Projects = append(rec.Projects, p)
		}
	}
	sort.Strings(rec.Projects)
	desired, err := s.desired(ctx, rec)
	if err != nil {
		return nil, err
	}

	s.mu.Lock()
	prev, known := s.agents[rec.InstanceID]
	// What the agent holds: the request when it carries the full state; the
	// last known state updated with the request when the agent reports only
	// changes and no heartbeat went missing; otherwise unknown, and the
	// agent is asked for its full state.
	full := req.Flags&pb.RequestFullState != 0
	inSequence := known && req.SequenceNum == prev.Sequence+1
	held := map[string]ConfigState{}
	if !full && known {
		for _, c := range prev.Configs {
			held[c.Name] = c
		}
	}
	for _, c := range req.PipelineConfigs {
		held[c.Name] = ConfigState{Name: c.Name, Version: c.Version, Status: c.Status.String(), Message: c.Message}
	}
	for _, c := range held {
		rec.Configs = append(rec.Configs, c)
	}
	sort.Slice(rec.Configs, func(i, j int) bool { return rec.Configs[i].Name < rec.Configs[j].Name })
	s.agents[rec.InstanceID] = rec
	s.expireLocked(now)
	s.dirty = true
	if s.cfg.StatePath != "" && now.Sub(s.lastSave) >= s.cfg.SaveInterval {
		if err := s.saveLocked(); err != nil {
			s.log.Warn("agent registry not saved; it is retried on the next heartbeat", "err", err)
		}
	}
	s.sharedDirty[rec.InstanceID] = true
	writeShared := s.cfg.Shared != nil && now.Sub(s.lastShared) >= s.cfg.SaveInterval
	s.mu.Unlock()
	if writeShared {
		if err := s.writeShared(ctx); err != nil {
			s.log.Warn("agents not written to the shared registry; retried on a later heartbeat (other servers list them later)", "err", err)
		}
	}

	resp := pb.HeartbeatResponse{
		RequestID:    req.RequestID,
		Capabilities: pb.ServerRemembersAttribute | pb.ServerRemembersPipelineConfigStatus,
	}
	if full || inSequence {
		resp.PipelineConfigUpdates = diff(desired, rec.Configs)
		// An agent reporting only changes never mentions a config again once
		// it deleted it: forget it now, or the delete would be resent forever.
		var gone []string
		for _, u := range resp.PipelineConfigUpdates {
			if u.Version == pb.VersionDeleted {
				gone = append(gone, u.Name)
			}
		}
		if len(gone) > 0 && !full {
			s.mu.Lock()
			rec.Configs = slices.DeleteFunc(slices.Clone(rec.Configs), func(c ConfigState) bool { return slices.Contains(gone, c.Name) })
			s.mu.Unlock()
		}
	} else {
		resp.Flags |= pb.ResponseReportFullState
	}
	if !known {
		s.log.Info("agent registered", "instance", rec.InstanceID, "ip", rec.IP, "hostname", rec.Hostname,
			"userDefinedIds", rec.UserDefinedIDs, "agentType", rec.AgentType, "version", rec.Version, "accessKeyId", key.ID)
	}
	return resp.Marshal(nil), nil
}

func (s *Server) fetchPipeline(ctx context.Context, key meta.AccessKey, body []byte, _ string) ([]byte, error) {
	var req pb.FetchConfigRequest
	if err := req.Unmarshal(body); err != nil {
		return nil, protocol.Errorf(protocol.CodePostBodyInvalid, "not a FetchConfigRequest protobuf: %v", err)
	}
	s.mu.Lock()
	rec, ok := s.agents[string(req.InstanceID)]
	s.mu.Unlock()
	if !ok {
		return nil, protocol.Errorf(protocol.CodeParameterInvalid, "agent %q has not sent a heartbeat: heartbeat first", req.InstanceID)
	}
	if rec.AccessKeyID != key.ID {
		return nil, protocol.Errorf(protocol.CodeUnauthorized, "agent %q heartbeats with another access key", req.InstanceID)
	}
	desired, err := s.desired(ctx, rec)
	if err != nil {
		return nil, err
	}
	resp := pb.FetchConfigResponse{RequestID: req.RequestID}
	for _, want := range req.ReqConfigs {
		if d, ok := desired[want.Name]; ok {
			resp.ConfigDetails = append(resp.ConfigDetails, pb.ConfigDetail{Name: d.name, Version: d.version, Detail: d.raw})
		}
	}
	return resp.Marshal(nil), nil
}

type desiredConfig struct {
	name, project string
	version       int64
	raw           []byte
}

// desired lists the configs applied to the machine groups rec matches, in
// the projects its key may read. Config names are one namespace per agent:
// when two projects apply configs of the same name, the first project (by
// name) wins and the conflict is logged.
func (s *Server) desired(ctx context.Context, rec *agentRecord) (map[string]desiredConfig, error) {
	projects := rec.Projects
	if rec.Admin {
		ps, _, err := s.cfg.Meta.ListProjects(ctx, meta.Page{})
		if err != nil {
			return nil, fmt.Errorf("configserver: list projects: %w", err)
		}
		projects = projects[:0:0]
		for _, p := range ps {
			projects = append(projects, p.Name)
		}
		sort.Strings(projects)
	}
	out := map[string]desiredConfig{}
	for _, project := range projects {
		groups, _, err := s.cfg.Meta.ListMachineGroups(ctx, project, meta.Page{})
		if errors.Is(err, meta.ErrNotFound) {
			continue // a granted project that was deleted
		}
		if err != nil {
			return nil, fmt.Errorf("configserver: list machine groups of %s: %w", project, err)
		}
		for _, gname := range groups {
			g, err := s.cfg.Meta.GetMachineGroup(ctx, project, gname)
			if errors.Is(err, meta.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("configserver: machine group %s/%s: %w", project, gname, err)
			}
			if !Matches(g, rec.IP, rec.UserDefinedIDs) {
				continue
			}
			names, err := s.cfg.Meta.AppliedConfigs(ctx, project, gname)
			if err != nil && !errors.Is(err, meta.ErrNotFound) {
				return nil, fmt.Errorf("configserver: configs of machine group %s/%s: %w", project, gname, err)
			}
			for _, name := range names {
				if d, dup := out[name]; dup {
					if d.project != project {
						s.log.Warn("two projects apply a config of the same name to one agent; the first project's is used",
							"config", name, "used", d.project, "ignored", project, "instance", rec.InstanceID)
					}
					continue
				}
				c, err := s.cfg.Meta.GetConfig(ctx, project, name)
				if errors.Is(err, meta.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("configserver: config %s/%s: %w", project, name, err)
				}
				out[name] = desiredConfig{name: name, project: project, version: Version(c), raw: c.Raw}
			}
		}
	}
	return out, nil
}

// Version is the config version agents see: the last modification time in
// nanoseconds, which changes on every update and never goes back.
func Version(c meta.Config) int64 {
	if v := c.LastModifyTime.UnixNano(); v > 0 {
		return v
	}
	return 1
}

// Matches reports whether group g selects an agent with this IP and these
// user-defined ids.
func Matches(g meta.MachineGroup, ip string, userDefinedIDs []string) bool {
	switch g.MachineIdentifyType {
	case "userdefined":
		for _, id := range userDefinedIDs {
			if slices.Contains(g.MachineList, id) {
				return true
			}
		}
		return false
	default: // "ip" (the API's default)
		return ip != "" && slices.Contains(g.MachineList, ip)
	}
}

// diff returns the updates that turn what the agent holds into desired:
// new or changed configs with their detail, removed ones with
// VersionDeleted. Sorted by name for stable answers.
func diff(desired map[string]desiredConfig, held []ConfigState) []pb.ConfigDetail {
	has := make(map[string]int64, len(held))
	for _, c := range held {
		has[c.Name] = c.Version
	}
	var out []pb.ConfigDetail
	for name, d := range desired {
		if v, ok := has[name]; !ok || v != d.version {
			out = append(out, pb.ConfigDetail{Name: name, Version: d.version, Detail: d.raw})
		}
	}
	for name := range has {
		if _, ok := desired[name]; !ok {
			out = append(out, pb.ConfigDetail{Name: name, Version: pb.VersionDeleted})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Server) expireLocked(now time.Time) {
	for id, r := range s.agents {
		if now.Sub(r.LastHeartbeat) > s.cfg.Expiry {
			delete(s.agents, id)
		}
	}
}

// Machines lists the agents machine group g of project selects, by last
// heartbeat (newest first). Only agents whose access key may read the
// project are listed.
func (s *Server) Machines(ctx context.Context, g meta.MachineGroup) []Machine {
	agents := s.sharedAgents(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now())
	for id, r := range s.agents {
		if o, ok := agents[id]; !ok || r.LastHeartbeat.After(o.LastHeartbeat) {
			agents[id] = r
		}
	}
	var out []Machine
	for _, r := range agents {
		if !r.allows(g.Project) || !Matches(g, r.IP, r.UserDefinedIDs) {
			continue
		}
		m := r.Machine
		m.UserDefinedIDs = slices.Clone(m.UserDefinedIDs)
		m.Configs = slices.Clone(m.Configs)
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastHeartbeat.Equal(out[j].LastHeartbeat) {
			return out[i].LastHeartbeat.After(out[j].LastHeartbeat)
		}
		return out[i].InstanceID < out[j].InstanceID
	})
	return out
}

// sharedAgents reads the agents every server wrote to the shared registry
// (none without one, or when it cannot be read: then this server's own
// agents are listed, and the error logged).
func (s *Server) sharedAgents(ctx context.Context) map[string]*agentRecord {
	out := map[string]*agentRecord{}
	if s.cfg.Shared == nil {
		return out
	}
	all, err := s.cfg.Shared.Agents(ctx, s.now().Add(-s.cfg.Expiry))
	if err != nil {
		s.log.Warn("shared agent registry unreadable; listing the agents of this server only", "err", err)
		return out
	}
	for _, a := range all {
		r := &agentRecord{}
		if err := json.Unmarshal(a.Record, r); err != nil || r.InstanceID == "" {
			s.log.Warn("shared agent registry holds an unreadable record; skipped", "instance", a.InstanceID, "err", err)
			continue
		}
		out[r.InstanceID] = r
	}
	return out
}

// MachineJSON is one entry of the ListMachines response: the keys the SDKs
// decode (ip, machine-uniqueid, userdefined-id, lastHeartbeatTime) plus
// Sluice's (hostname, agent type and version, config statuses), which SDKs
// ignore.
type MachineJSON struct {
	IP                string        `json:"ip"`
	UniqueID          string        `json:"machine-uniqueid"`
	UserDefinedID     string        `json:"userdefined-id"`
	LastHeartbeatTime int64         `json:"lastHeartbeatTime"`
	Hostname          string        `json:"hostname"`
	AgentType         string        `json:"agentType"`
	Version           string        `json:"version"`
	Configs           []ConfigState `json:"configs"`
}

// ListMachinesJSON is the ListMachines response body for the group's
// agents, paged like the other lists ({count, total, machines}).
func (s *Server) ListMachinesJSON(ctx context.Context, g meta.MachineGroup, offset, size int) ([]byte, error) {
	all := s.Machines(ctx, g)
	page := meta.Apply(all, meta.Page{Offset: offset, Size: size})
	ms := make([]MachineJSON, 0, len(page))
	for _, m := range page {
		cs := m.Configs
		if cs == nil {
			cs = []ConfigState{}
		}
		ms = append(ms, MachineJSON{
			IP: m.IP, UniqueID: m.InstanceID, UserDefinedID: strings.Join(m.UserDefinedIDs, ","),
			LastHeartbeatTime: m.LastHeartbeat.Unix(), Hostname: m.Hostname, AgentType: m.AgentType,
			Version: m.Version, Configs: cs,
		})
	}
	return json.Marshal(map[string]any{"count": len(ms), "total": len(all), "machines": ms})
}
