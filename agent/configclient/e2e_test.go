package configclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/agent/agenttest"
	"github.com/sluicelog/sluice/agent/configclient"
	"github.com/sluicelog/sluice/agent/supervisor"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/app"
	"github.com/sluicelog/sluice/server/app/apptest"
	csrv "github.com/sluicelog/sluice/server/configserver"
	"github.com/sluicelog/sluice/server/meta"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, apptest.IdleConns()...)
}

const (
	adminID     = apptest.AdminID
	adminSecret = apptest.AdminSecret
	agentID     = "agent-key"
	agentSecret = "agent-secret-0123456789"
	project     = "shop"
)

// server is a real sluice-server (JSON metadata, DuckDB) on 127.0.0.1.
type server struct {
	*apptest.Server
	sdk sls.ClientInterface
}

func startServer(t *testing.T, dataDir string) *server {
	t.Helper()
	srv := apptest.Start(t, apptest.Options{Config: app.Config{DataDir: dataDir}})
	return &server{Server: srv, sdk: srv.AdminSDK()}
}

// machines is ListMachines as the wire carries it (the SDK's Machine struct
// drops the config statuses).
func (s *server) machines(t *testing.T, group string) []csrv.MachineJSON {
	t.Helper()
	ms, err := s.listMachines(group)
	require.NoError(t, err)
	return ms
}

// listMachines is machines without require, for require.Eventually's
// goroutine.
func (s *server) listMachines(group string) ([]csrv.MachineJSON, error) {
	r, err := http.NewRequest(http.MethodGet, s.URL()+"/machinegroups/"+group+"/machines", nil)
	if err != nil {
		return nil, err
	}
	r.Header.Set(protocol.HeaderProject, project)
	r.Header.Set(protocol.HeaderAPIVersion, protocol.APIVersion)
	signer := protocol.Signer{Credentials: protocol.Credentials{AccessKeyID: adminID, AccessKeySecret: adminSecret}}
	if err := signer.SignRequest(r, nil, time.Now()); err != nil {
		return nil, err
	}
	resp, err := s.HTTPClient().Do(r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ListMachines: HTTP %d: %s", resp.StatusCode, body)
	}
	var out struct {
		Count    int                `json:"count"`
		Total    int                `json:"total"`
		Machines []csrv.MachineJSON `json:"machines"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, err
	}
	if out.Count != len(out.Machines) {
		return nil, fmt.Errorf("count %d but %d machines", out.Count, len(out.Machines))
	}
	return out.Machines, nil
}

// startAgent runs an in-process agent with the agent key.
func startAgent(t *testing.T, dir, endpoint string, roots []string) *agenttest.Agent {
	t.Helper()
	return agenttest.Start(t, agenttest.Options{
		Dir: dir, Endpoint: endpoint, AccessKeyID: agentID, AccessKeySecret: agentSecret,
		AllowedRoots: roots, UserDefinedIDs: []string{"web-1", "edge"},
	})
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(line + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func collected(t *testing.T, dir, marker string) int {
	t.Helper()
	n, err := count(dir, marker)
	require.NoError(t, err)
	return n
}

func count(dir, marker string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, agenttest.OutputFile))
	if os.IsNotExist(err) {
		return 0, nil
	}
	return strings.Count(string(data), marker), err
}

func waitCollected(t *testing.T, dir, marker string) {
	t.Helper()
	require.Eventually(t, func() bool { n, err := count(dir, marker); return err == nil && n > 0 }, 20*time.Second, 20*time.Millisecond,
		"line %q never reached the output", marker)
}

func simpleConfig(name, logPath string) *sls.LogConfig {
	detail := sls.RegexConfigInputDetail{}
	sls.InitRegexConfigInputDetail(&detail)
	detail.LogPath = logPath
	detail.FilePattern = "*.log"
	detail.TailExisted = true
	return &sls.LogConfig{Name: name, InputType: "file", InputDetail: detail, OutputType: "LogService",
		OutputDetail: sls.OutputDetail{ProjectName: project, LogStoreName: "app"}}
}

func configState(ms []csrv.MachineJSON, name string) csrv.ConfigState {
	for _, m := range ms {
		for _, c := range m.Configs {
			if c.Name == name {
				return c
			}
		}
	}
	return csrv.ConfigState{}
}

func TestCentralConfigEndToEnd(t *testing.T) {
	root := t.TempDir() // the only directory server configs may read
	agentDir, dataDir := t.TempDir(), t.TempDir()
	srv := startServer(t, dataDir)
	c := srv.sdk

	// An agent key that may read the project (not an admin key).
	require.NoError(t, srv.App.Meta().PutAccessKey(context.Background(), meta.AccessKey{
		ID: agentID, Secret: agentSecret, Projects: map[string]meta.Permission{project: meta.PermRead},
	}))
	_, err := c.CreateProject(project, "central config")
	require.NoError(t, err)
	require.NoError(t, c.CreateMachineGroup(project, &sls.MachineGroup{
		Name: "web", MachineIDType: "userdefined", MachineIDList: []string{"web-1"},
	}))
	require.NoError(t, c.CreateMachineGroup(project, &sls.MachineGroup{
		Name: "by-ip", MachineIDType: "ip", MachineIDList: []string{"10.1.2.3"},
	}))
	require.NoError(t, c.CreateMachineGroup(project, &sls.MachineGroup{
		Name: "others", MachineIDType: "userdefined", MachineIDList: []string{"db-1"},
	}))
	goodLog := filepath.Join(root, "good", "app.log")
	ipLog := filepath.Join(root, "ip", "app.log")
	appendLine(t, goodLog, "good-before-start")
	appendLine(t, ipLog, "ip-line-1")
	require.NoError(t, c.CreateConfig(project, simpleConfig("good", filepath.Dir(goodLog))))
	require.NoError(t, c.ApplyConfigToMachineGroup(project, "good", "web"))
	require.NoError(t, c.CreateConfig(project, simpleConfig("by-ip", filepath.Dir(ipLog))))
	require.NoError(t, c.ApplyConfigToMachineGroup(project, "by-ip", "by-ip"))
	require.NoError(t, c.CreateConfig(project, simpleConfig("not-mine", filepath.Join(root, "db"))))
	require.NoError(t, c.ApplyConfigToMachineGroup(project, "not-mine", "others"))

	a := startAgent(t, agentDir, srv.Addr(), []string{root})

	// First heartbeat: the configs of the agent's groups arrive and run.
	require.True(t, a.Client.Heartbeat(context.Background()), "the first heartbeat brings configs")
	require.Equal(t, supervisor.StateRunning, a.State("good").State)
	require.Equal(t, supervisor.StateRunning, a.State("by-ip").State)
	require.Empty(t, a.State("not-mine").Name, "a group the agent is not in gives it nothing")
	waitCollected(t, agentDir, "good-before-start")
	waitCollected(t, agentDir, "ip-line-1")

	// Second heartbeat reports the statuses; ListMachines shows them.
	require.False(t, a.Client.Heartbeat(context.Background()))
	ms, total, err := c.ListMachines(project, "web")
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.Len(t, ms, 1)
	require.Equal(t, "10.1.2.3", ms[0].IP)
	require.Equal(t, a.Client.InstanceID(), ms[0].UniqueID)
	require.Equal(t, "web-1,edge", ms[0].UserdefinedID)
	require.InDelta(t, time.Now().Unix(), ms[0].LastHeartBeatTime, 60)
	view := srv.machines(t, "web")
	require.Equal(t, "test", view[0].Version)
	require.Equal(t, "web-host", view[0].Hostname)
	require.Equal(t, "APPLIED", configState(view, "good").Status)
	require.Equal(t, "APPLIED", configState(view, "by-ip").Status)
	others, _, err := c.ListMachines(project, "others")
	require.NoError(t, err)
	require.Empty(t, others)

	// A config with a bad regex: the server refuses it through the API...
	bad := simpleConfig("bad", filepath.Join(root, "bad"))
	bad.InputDetail = map[string]any{"logType": "common_reg_log", "logPath": filepath.Join(root, "bad"), "filePattern": "*.log",
		"regex": "(unclosed", "key": []string{"content"}}
	require.Error(t, c.CreateConfig(project, bad))
	// ...so it is written straight into the metadata, as an older server
	// or a restored backup could have it, and applied through the API.
	raw, err := json.Marshal(map[string]any{"configName": "bad", "inputType": "file", "outputType": "LogService",
		"inputDetail":  bad.InputDetail,
		"outputDetail": map[string]string{"projectName": project, "logstoreName": "app"}})
	require.NoError(t, err)
	now := time.Now()
	require.NoError(t, srv.App.Meta().CreateConfig(context.Background(), meta.Config{Project: project, Name: "bad", Raw: raw, CreateTime: now, LastModifyTime: now}))
	require.NoError(t, c.ApplyConfigToMachineGroup(project, "bad", "web"))
	// And a config that would read /etc.
	require.NoError(t, c.CreateConfig(project, simpleConfig("etc", "/etc")))
	require.NoError(t, c.ApplyConfigToMachineGroup(project, "etc", "web"))

	require.True(t, a.Client.Heartbeat(context.Background()))
	require.False(t, a.Client.Heartbeat(context.Background()))
	view = srv.machines(t, "web")
	st := configState(view, "bad")
	require.Equal(t, "FAILED", st.Status)
	require.Contains(t, st.Message, "inputDetail.regex")
	st = configState(view, "etc")
	require.Equal(t, "FAILED", st.Status)
	require.Contains(t, st.Message, `inputDetail.logPath "/etc" is outside the directories this agent collects from`)
	require.Equal(t, "APPLIED", configState(view, "good").Status)
	appendLine(t, goodLog, "good-while-bad")
	waitCollected(t, agentDir, "good-while-bad")

	// Deleting one config and removing another from the group stops them
	// and clears their statuses.
	require.NoError(t, c.DeleteConfig(project, "bad"))
	require.NoError(t, c.RemoveConfigFromMachineGroup(project, "etc", "web"))
	require.NoError(t, c.RemoveConfigFromMachineGroup(project, "by-ip", "by-ip"))
	require.True(t, a.Client.Heartbeat(context.Background()))
	require.False(t, a.Client.Heartbeat(context.Background()))
	require.Empty(t, a.State("bad").Name)
	require.Empty(t, a.State("etc").Name)
	require.Empty(t, a.State("by-ip").Name)
	view = srv.machines(t, "web")
	require.Len(t, view[0].Configs, 1)
	require.Equal(t, "good", view[0].Configs[0].Name)
	appendLine(t, ipLog, "ip-after-remove")

	// A config change arrives and resumes from the saved position.
	changedRaw := map[string]any{"configName": "good", "inputType": "file", "outputType": "LogService", "logSample": "changed",
		"inputDetail":  map[string]any{"logType": "common_reg_log", "logPath": filepath.Dir(goodLog), "filePattern": "*.log", "tailExisted": true},
		"outputDetail": map[string]string{"projectName": project, "logstoreName": "app"}}
	b, err := json.Marshal(changedRaw)
	require.NoError(t, err)
	require.NoError(t, c.UpdateConfigString(project, "good", string(b)))
	require.True(t, a.Client.Heartbeat(context.Background()))
	appendLine(t, goodLog, "good-after-change")
	waitCollected(t, agentDir, "good-after-change")
	require.Equal(t, 1, collected(t, agentDir, "good-before-start"), "the changed config resumed; nothing read twice")

	// Restart with the server down: the cached config keeps collecting.
	a.Stop()
	srv.Stop()
	appendLine(t, goodLog, "good-while-server-down")
	a = startAgent(t, agentDir, srv.Addr(), []string{root})
	require.Equal(t, supervisor.StateRunning, a.State("good").State)
	require.False(t, a.Client.Heartbeat(context.Background()), "no server, no change")
	waitCollected(t, agentDir, "good-while-server-down")
	require.Equal(t, 1, collected(t, agentDir, "good-while-bad"), "resumed from checkpoints after restart")
	require.Zero(t, collected(t, agentDir, "ip-after-remove"), "a removed config collects nothing")
	cst := a.Client.Status()
	require.Contains(t, cst.LastError, "connection refused")
	require.Len(t, cst.Configs, 1)
	require.Equal(t, configclient.ConfigStatus{Name: "good", Version: cst.Configs[0].Version, Status: "APPLIED"}, cst.Configs[0])

	// The server comes back (same data): the agent keeps its identity, and
	// removing the config from the group stops it.
	srv2 := startServer(t, dataDir)
	a.Stop()
	a = startAgent(t, agentDir, srv2.Addr(), []string{root})
	require.NoError(t, srv2.sdk.RemoveConfigFromMachineGroup(project, "good", "web"))
	require.True(t, a.Client.Heartbeat(context.Background()))
	require.Empty(t, a.State("good").Name)
	appendLine(t, goodLog, "good-after-remove")
	time.Sleep(300 * time.Millisecond) // many file polls
	require.Zero(t, collected(t, agentDir, "good-after-remove"))
	ms, _, err = srv2.sdk.ListMachines(project, "web")
	require.NoError(t, err)
	require.Len(t, ms, 1, "one machine across agent restarts (stable instance id)")
}
