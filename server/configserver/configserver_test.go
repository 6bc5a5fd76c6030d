package configserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/protocol"
	pb "github.com/sluicelog/sluice/protocol/configpb"
	"github.com/sluicelog/sluice/server/auth"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/meta/jsonfile"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	t    *testing.T
	meta *jsonfile.Store
	cs   *Server
	http *httptest.Server
	now  time.Time
}

func newFixture(t *testing.T, statePath string) *fixture {
	t.Helper()
	m, err := jsonfile.Open(filepath.Join(t.TempDir(), "meta"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	ctx := context.Background()
	now := time.Now()
	require.NoError(t, m.CreateProject(ctx, meta.Project{Name: "p1", CreateTime: now}))
	require.NoError(t, m.CreateProject(ctx, meta.Project{Name: "p2", CreateTime: now}))
	require.NoError(t, m.PutAccessKey(ctx, meta.AccessKey{ID: "a1", Secret: "s1", Projects: map[string]meta.Permission{"p1": meta.PermRead}}))
	f := &fixture{t: t, meta: m, now: now}
	f.cs = f.open(statePath)
	return f
}

func (f *fixture) open(statePath string) *Server {
	cs, err := New(Config{Meta: f.meta, Auth: auth.New(f.meta, auth.Options{}), StatePath: statePath, SaveInterval: time.Nanosecond})
	require.NoError(f.t, err)
	if f.http != nil {
		f.http.Close()
	}
	f.http = httptest.NewServer(cs)
	f.t.Cleanup(f.http.Close)
	return cs
}

func (f *fixture) group(project, name, typ string, list ...string) {
	ctx := context.Background()
	require.NoError(f.t, f.meta.CreateMachineGroup(ctx, meta.MachineGroup{Project: project, Name: name, MachineIdentifyType: typ, MachineList: list}))
}

func (f *fixture) config(project, name, group string) {
	ctx := context.Background()
	f.now = f.now.Add(time.Second)
	raw := []byte(`{"configName":"` + name + `"}`)
	if _, err := f.meta.GetConfig(ctx, project, name); err == nil {
		require.NoError(f.t, f.meta.UpdateConfig(ctx, meta.Config{Project: project, Name: name, Raw: raw, LastModifyTime: f.now}))
	} else {
		require.NoError(f.t, f.meta.CreateConfig(ctx, meta.Config{Project: project, Name: name, Raw: raw, CreateTime: f.now, LastModifyTime: f.now}))
	}
	if group != "" {
		require.NoError(f.t, f.meta.ApplyConfig(ctx, project, group, name))
	}
}

// post sends body signed with key (unsigned when id is "").
func (f *fixture) post(path, id, secret string, body []byte) (int, []byte) {
	f.t.Helper()
	code, b, err := f.postE(path, id, secret, body)
	require.NoError(f.t, err)
	return code, b
}

// postE is post for goroutines other than the test's.
func (f *fixture) postE(path, id, secret string, body []byte) (int, []byte, error) {
	r, err := http.NewRequest(http.MethodPost, f.http.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	r.Header.Set("Content-Type", pb.ContentType)
	if id != "" {
		s := protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: id, AccessKeySecret: secret}}
		if err := s.SignRequest(r, body, time.Now()); err != nil {
			return 0, nil, err
		}
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (f *fixture) heartbeat(req *pb.HeartbeatRequest) pb.HeartbeatResponse {
	f.t.Helper()
	code, body := f.post(pb.PathHeartbeat, "a1", "s1", req.Marshal(nil))
	require.Equal(f.t, http.StatusOK, code, string(body))
	var resp pb.HeartbeatResponse
	require.NoError(f.t, resp.Unmarshal(body))
	return resp
}

func names(ds []pb.ConfigDetail) map[string]int64 {
	out := map[string]int64{}
	for _, d := range ds {
		out[d.Name] = d.Version
	}
	return out
}

func TestHeartbeatHandsOutGroupConfigs(t *testing.T) {
	state := filepath.Join(t.TempDir(), "agents.json")
	f := newFixture(t, state)
	f.group("p1", "web", "userdefined", "web-1")
	f.group("p1", "ips", "ip", "10.0.0.7")
	f.group("p1", "db", "userdefined", "db-1")
	f.group("p2", "web", "userdefined", "web-1") // a project the key may not read
	f.config("p1", "a", "web")
	f.config("p1", "b", "ips")
	f.config("p1", "c", "db")
	f.config("p2", "secret", "web")

	req := &pb.HeartbeatRequest{InstanceID: []byte("agent-1"), AgentType: "sluice", SequenceNum: 1, Flags: pb.RequestFullState,
		Attributes: pb.AgentAttributes{IP: "10.0.0.7", Hostname: "h", Version: "1.0"},
		Tags:       []pb.AgentGroupTag{{Name: TagUserDefinedID, Value: "web-1"}, {Name: "other", Value: "db-1"}}}
	resp := f.heartbeat(req)
	got := names(resp.PipelineConfigUpdates)
	require.Len(t, got, 2, "a by user-defined id, b by IP; not c (other group), not secret (other project)")
	require.Contains(t, got, "a")
	require.Contains(t, got, "b")
	require.JSONEq(t, `{"configName":"a"}`, string(resp.PipelineConfigUpdates[0].Detail))

	// Holding both at the current versions: nothing to do.
	req.SequenceNum = 2
	req.PipelineConfigs = []pb.ConfigInfo{{Name: "a", Version: got["a"], Status: pb.StatusApplied}, {Name: "b", Version: got["b"], Status: pb.StatusFailed, Message: "boom"}}
	require.Empty(t, f.heartbeat(req).PipelineConfigUpdates)

	// A change, a removal.
	f.config("p1", "a", "")
	require.NoError(t, f.meta.RemoveConfig(context.Background(), "p1", "ips", "b"))
	req.SequenceNum = 3
	upd := names(f.heartbeat(req).PipelineConfigUpdates)
	require.Greater(t, upd["a"], got["a"])
	require.Equal(t, pb.VersionDeleted, upd["b"])

	// ListMachines: the statuses of the last heartbeat, for the group's
	// project only.
	g, err := f.meta.GetMachineGroup(context.Background(), "p1", "web")
	require.NoError(t, err)
	body, err := f.cs.ListMachinesJSON(context.Background(), g, 0, 100)
	require.NoError(t, err)
	var list struct {
		Count, Total int
		Machines     []MachineJSON
	}
	require.NoError(t, json.Unmarshal(body, &list))
	require.Equal(t, 1, list.Count)
	m := list.Machines[0]
	require.Equal(t, "agent-1", m.UniqueID)
	require.Equal(t, "10.0.0.7", m.IP)
	require.Equal(t, "web-1", m.UserDefinedID, "only user_defined_id tags are identities")
	require.Equal(t, []ConfigState{{Name: "a", Version: got["a"], Status: "APPLIED"}, {Name: "b", Version: got["b"], Status: "FAILED", Message: "boom"}}, m.Configs)
	g2, err := f.meta.GetMachineGroup(context.Background(), "p2", "web")
	require.NoError(t, err)
	require.Empty(t, f.cs.Machines(context.Background(), g2), "the agent's key cannot read p2")

	// The registry survives a restart of the server.
	require.NoError(t, f.cs.Close())
	cs := f.open(state)
	require.Len(t, cs.Machines(context.Background(), g), 1)

	// FetchPipelineConfig returns the detail of what the agent asks for.
	freq := pb.FetchConfigRequest{InstanceID: []byte("agent-1"), ReqConfigs: []pb.ConfigInfo{{Name: "a"}, {Name: "c"}}}
	code, out := f.post(pb.PathFetchPipelineConfig, "a1", "s1", freq.Marshal(nil))
	require.Equal(t, http.StatusOK, code, string(out))
	var fresp pb.FetchConfigResponse
	require.NoError(t, fresp.Unmarshal(out))
	require.Len(t, fresp.ConfigDetails, 1, "c is not the agent's")
	require.Equal(t, "a", fresp.ConfigDetails[0].Name)
}

// Agents that report only changes (LoongCollector's optimisation): the
// server asks for the full state when it cannot trust what it knows, and
// otherwise merges the changes into the last known state.
func TestPartialState(t *testing.T) {
	f := newFixture(t, "")
	f.group("p1", "web", "ip", "10.0.0.1")
	f.config("p1", "a", "web")
	f.config("p1", "b", "web")
	attrs := pb.AgentAttributes{IP: "10.0.0.1"}

	resp := f.heartbeat(&pb.HeartbeatRequest{InstanceID: []byte("x"), SequenceNum: 41, Attributes: attrs})
	require.Equal(t, pb.ResponseReportFullState, resp.Flags&pb.ResponseReportFullState, "unknown agent")
	require.Empty(t, resp.PipelineConfigUpdates)

	resp = f.heartbeat(&pb.HeartbeatRequest{InstanceID: []byte("x"), SequenceNum: 42, Attributes: attrs, Flags: pb.RequestFullState})
	require.Zero(t, resp.Flags)
	v := names(resp.PipelineConfigUpdates)
	require.Len(t, v, 2)

	// Reports a only, then b only: both are known, nothing is resent.
	resp = f.heartbeat(&pb.HeartbeatRequest{InstanceID: []byte("x"), SequenceNum: 43, Attributes: attrs,
		PipelineConfigs: []pb.ConfigInfo{{Name: "a", Version: v["a"], Status: pb.StatusApplied}}})
	require.Equal(t, []string{"b"}, updateNames(resp), "b is not held yet: sent again")
	resp = f.heartbeat(&pb.HeartbeatRequest{InstanceID: []byte("x"), SequenceNum: 44, Attributes: attrs,
		PipelineConfigs: []pb.ConfigInfo{{Name: "b", Version: v["b"], Status: pb.StatusApplied}}})
	require.Empty(t, resp.PipelineConfigUpdates, "a was remembered")

	// A removal is sent once.
	require.NoError(t, f.meta.RemoveConfig(context.Background(), "p1", "web", "a"))
	resp = f.heartbeat(&pb.HeartbeatRequest{InstanceID: []byte("x"), SequenceNum: 45, Attributes: attrs})
	require.Equal(t, map[string]int64{"a": pb.VersionDeleted}, names(resp.PipelineConfigUpdates))
	resp = f.heartbeat(&pb.HeartbeatRequest{InstanceID: []byte("x"), SequenceNum: 46, Attributes: attrs})
	require.Empty(t, resp.PipelineConfigUpdates)

	// A skipped heartbeat: ask for the full state again.
	resp = f.heartbeat(&pb.HeartbeatRequest{InstanceID: []byte("x"), SequenceNum: 48, Attributes: attrs})
	require.Equal(t, pb.ResponseReportFullState, resp.Flags)
}

func updateNames(resp pb.HeartbeatResponse) []string {
	var out []string
	for _, u := range resp.PipelineConfigUpdates {
		out = append(out, u.Name)
	}
	return out
}

func TestRefusedRequests(t *testing.T) {
	f := newFixture(t, "")
	hb := (&pb.HeartbeatRequest{InstanceID: []byte("x")}).Marshal(nil)

	code, body := f.post(pb.PathHeartbeat, "", "", hb)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, string(body), "missing Authorization header")

	code, body = f.post(pb.PathHeartbeat, "a1", "wrong", hb)
	require.Equal(t, http.StatusUnauthorized, code, string(body))

	code, body = f.post(pb.PathHeartbeat, "a1", "s1", []byte{0x0a, 0x05, 'a'})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, string(body), "not a HeartbeatRequest protobuf")

	code, body = f.post(pb.PathHeartbeat, "a1", "s1", (&pb.HeartbeatRequest{AgentType: "x"}).Marshal(nil))
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, string(body), "without instance_id")

	code, body = f.post("/Agent/Nope", "a1", "s1", hb)
	require.Equal(t, http.StatusNotFound, code, string(body))

	code, body = f.post(pb.PathFetchPipelineConfig, "a1", "s1", (&pb.FetchConfigRequest{InstanceID: []byte("never")}).Marshal(nil))
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, string(body), "has not sent a heartbeat")
}

func TestExpiry(t *testing.T) {
	f := newFixture(t, "")
	f.group("p1", "web", "userdefined", "w")
	now := time.Now()
	cs, err := New(Config{Meta: f.meta, Auth: auth.New(f.meta, auth.Options{}), Expiry: time.Hour, Now: func() time.Time { return now }})
	require.NoError(t, err)
	_, err = cs.heartbeat(context.Background(), meta.AccessKey{ID: "a1", Projects: map[string]meta.Permission{"p1": meta.PermRead}},
		(&pb.HeartbeatRequest{InstanceID: []byte("x"), Tags: []pb.AgentGroupTag{{Name: TagUserDefinedID, Value: "w"}}}).Marshal(nil), "1.2.3.4")
	require.NoError(t, err)
	g, err := f.meta.GetMachineGroup(context.Background(), "p1", "web")
	require.NoError(t, err)
	ms := cs.Machines(context.Background(), g)
	require.Len(t, ms, 1)
	require.Equal(t, "1.2.3.4", ms[0].IP, "the connection's address when the agent sends none")
	now = now.Add(2 * time.Hour)
	require.Empty(t, cs.Machines(context.Background(), g))
}

func TestMatches(t *testing.T) {
	ip := meta.MachineGroup{MachineIdentifyType: "ip", MachineList: []string{"10.0.0.1"}}
	ud := meta.MachineGroup{MachineIdentifyType: "userdefined", MachineList: []string{"a", "b"}}
	require.True(t, Matches(ip, "10.0.0.1", nil))
	require.False(t, Matches(ip, "10.0.0.2", []string{"10.0.0.1"}), "ip groups ignore user-defined ids")
	require.False(t, Matches(ip, "", nil))
	require.True(t, Matches(ud, "10.0.0.1", []string{"x", "b"}))
	require.False(t, Matches(ud, "a", nil), "userdefined groups ignore the IP")
}

// Many agents at once (run with -race): every one is registered and gets
// its config.
func TestConcurrentHeartbeats(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "agents.json"))
	f.group("p1", "all", "ip", "10.0.0.1")
	f.config("p1", "a", "all")
	g, err := f.meta.GetMachineGroup(context.Background(), "p1", "all")
	require.NoError(t, err)
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			req := pb.HeartbeatRequest{InstanceID: []byte{byte('a' + i)}, Flags: pb.RequestFullState, Attributes: pb.AgentAttributes{IP: "10.0.0.1"}}
			code, body, err := f.postE(pb.PathHeartbeat, "a1", "s1", req.Marshal(nil))
			if err != nil {
				errs <- err
				return
			}
			var resp pb.HeartbeatResponse
			switch err := resp.Unmarshal(body); {
			case code != http.StatusOK:
				errs <- fmt.Errorf("HTTP %d: %s", code, body)
			case err != nil:
				errs <- err
			case len(resp.PipelineConfigUpdates) != 1:
				errs <- fmt.Errorf("%d updates", len(resp.PipelineConfigUpdates))
			default:
				_ = f.cs.Machines(context.Background(), g)
				errs <- nil
			}
		}()
	}
	for range 20 {
		require.NoError(t, <-errs)
	}
	require.Len(t, f.cs.Machines(context.Background(), g), 20)
}

// memRegistry is a SharedRegistry in memory, for the merge logic; the
// PostgreSQL one is tested in pgregistry.
type memRegistry struct {
	mu     sync.Mutex
	agents map[string]SharedAgent
}

func (m *memRegistry) PutAgents(_ context.Context, agents []SharedAgent, expired time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range agents {
		if o, ok := m.agents[a.InstanceID]; !ok || !o.LastHeartbeat.After(a.LastHeartbeat) {
			m.agents[a.InstanceID] = a
		}
	}
	for id, a := range m.agents {
		if a.LastHeartbeat.Before(expired) {
			delete(m.agents, id)
		}
	}
	return nil
}

func (m *memRegistry) Agents(_ context.Context, since time.Time) ([]SharedAgent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []SharedAgent
	for _, a := range m.agents {
		if !a.LastHeartbeat.Before(since) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Two servers on one shared registry: an agent whose heartbeats reach one
// is listed by the other, with its newest state.
func TestSharedRegistryListsAgentsOfOtherServers(t *testing.T) {
	f := newFixture(t, "")
	f.group("p1", "web", "userdefined", "w")
	reg := &memRegistry{agents: map[string]SharedAgent{}}
	open := func() *Server {
		cs, err := New(Config{Meta: f.meta, Auth: auth.New(f.meta, auth.Options{}), Shared: reg, SaveInterval: time.Nanosecond})
		require.NoError(t, err)
		return cs
	}
	a, b := open(), open()
	key := meta.AccessKey{ID: "a1", Projects: map[string]meta.Permission{"p1": meta.PermRead}}
	hb := func(cs *Server, id, version string) {
		_, err := cs.heartbeat(context.Background(), key, (&pb.HeartbeatRequest{InstanceID: []byte(id),
			Attributes: pb.AgentAttributes{Version: version},
			Tags:       []pb.AgentGroupTag{{Name: TagUserDefinedID, Value: "w"}}}).Marshal(nil), "1.2.3.4")
		require.NoError(t, err)
	}
	g, err := f.meta.GetMachineGroup(context.Background(), "p1", "web")
	require.NoError(t, err)
	hb(a, "agent-1", "1.0")
	ms := b.Machines(context.Background(), g)
	require.Len(t, ms, 1, "server b lists the agent that heartbeats server a")
	require.Equal(t, "agent-1", ms[0].InstanceID)
	hb(b, "agent-2", "1.0")
	require.Len(t, a.Machines(context.Background(), g), 2)
	time.Sleep(2 * time.Millisecond)
	hb(b, "agent-1", "2.0") // the agent moved to server b
	for _, cs := range []*Server{a, b} {
		for _, m := range cs.Machines(context.Background(), g) {
			if m.InstanceID == "agent-1" {
				require.Equal(t, "2.0", m.Version, "the newest heartbeat wins on every server")
			}
		}
	}
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
}
