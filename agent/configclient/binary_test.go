package configclient_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/meta"
)

// TestAgentBinary runs the real sluice-agent binary with --config-server
// against the in-process server: the instance config and environment
// variables a user writes, heartbeats on a timer, a restart while the server
// is down.
func TestAgentBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sluice-agent")
	}
	bin := filepath.Join(t.TempDir(), "sluice-agent")
	build := exec.Command("go", "build", "-o", bin, "github.com/sluicelog/sluice/cmd/sluice-agent")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	root, agentDir := t.TempDir(), t.TempDir()
	srv := startServer(t, t.TempDir())
	c := srv.sdk
	require.NoError(t, srv.App.Meta().PutAccessKey(context.Background(), meta.AccessKey{
		ID: agentID, Secret: agentSecret, Projects: map[string]meta.Permission{project: meta.PermRead},
	}))
	_, err := c.CreateProject(project, "")
	require.NoError(t, err)
	require.NoError(t, c.CreateMachineGroup(project, &sls.MachineGroup{Name: "sidecars", MachineIDType: "userdefined", MachineIDList: []string{"shop-web"}}))
	logFile := filepath.Join(root, "web", "access.log")
	appendLine(t, logFile, "bin-line-1")
	require.NoError(t, c.CreateConfig(project, simpleConfig("web", filepath.Dir(logFile))))
	require.NoError(t, c.ApplyConfigToMachineGroup(project, "web", "sidecars"))

	instance := filepath.Join(agentDir, "ilogtail_config.json")
	require.NoError(t, os.WriteFile(instance, []byte(`{
  "access_key_id": "`+agentID+`", "access_key_secret": "`+agentSecret+`",
  "user_config_file_path": "`+filepath.Join(agentDir, "user_config.json")+`",
  "check_point_filename": "`+filepath.Join(agentDir, "checkpoint")+`",
  "allowed_log_roots": ["`+root+`"]
}`), 0o600))
	out := filepath.Join(agentDir, "out.jsonl")
	run := func(server string) *exec.Cmd {
		cmd := exec.Command(bin, "run", "--config-server", server, "--heartbeat-interval", "200ms",
			"--output", "file:"+out, "--http-listen", "", "--stop-delay", "0", "--file-poll", "50ms")
		cmd.Env = append(os.Environ(), "ALIYUN_LOGTAIL_CONFIG="+instance, "ALIYUN_LOGTAIL_USER_DEFINED_ID=shop-web,shop-all",
			"check_point_dump_interval=1")
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, cmd.Wait())
	}
	cmd := run(srv.Addr())
	defer func() {
		if cmd != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	waitCollected(t, agentDir, "bin-line-1")
	require.Eventually(t, func() bool {
		ms, err := srv.listMachines("sidecars")
		return err == nil && len(ms) == 1 && configState(ms, "web").Status == "APPLIED"
	}, 20*time.Second, 50*time.Millisecond)
	ms := srv.machines(t, "sidecars")
	require.Equal(t, "shop-web,shop-all", ms[0].UserDefinedID)
	require.Equal(t, "sluice", ms[0].AgentType)

	// Restart with the server gone: the cached config collects.
	stop(cmd)
	srv.Stop()
	appendLine(t, logFile, "bin-line-2")
	cmd = run(srv.Addr())
	waitCollected(t, agentDir, "bin-line-2")
	require.Equal(t, 1, collected(t, agentDir, "bin-line-1"), "resumed from the checkpoint")
	stop(cmd)
	cmd = nil
}

// TestAgentBinaryShipsToServer is the whole loop with the real binary: the
// config comes from the server's machine group, the logs go back to the
// same server (--output sls) and are found with the SDK.
func TestAgentBinaryShipsToServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sluice-agent")
	}
	bin := filepath.Join(t.TempDir(), "sluice-agent")
	build := exec.Command("go", "build", "-o", bin, "github.com/sluicelog/sluice/cmd/sluice-agent")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	root, agentDir := t.TempDir(), t.TempDir()
	srv := startServer(t, t.TempDir())
	c := srv.sdk
	require.NoError(t, srv.App.Meta().PutAccessKey(context.Background(), meta.AccessKey{
		ID: agentID, Secret: agentSecret, Projects: map[string]meta.Permission{project: meta.PermWrite},
	}))
	_, err := c.CreateProject(project, "")
	require.NoError(t, err)
	require.NoError(t, c.CreateLogStore(project, "app", 7, 1, false, 0))
	require.NoError(t, c.CreateIndex(project, "app", sls.Index{Line: &sls.IndexLine{Token: []string{" ", "-"}},
		Keys: map[string]sls.IndexKey{"__tag__:__user_defined_id__": {Type: "text", Token: []string{","}}}}))
	require.NoError(t, c.CreateMachineGroup(project, &sls.MachineGroup{Name: "sidecars", MachineIDType: "userdefined", MachineIDList: []string{"shop-web"}}))
	logFile := filepath.Join(root, "web", "access.log")
	for i := range 20 {
		appendLine(t, logFile, fmt.Sprintf("GET /item/%d shipped", i))
	}
	require.NoError(t, c.CreateConfig(project, simpleConfig("web", filepath.Dir(logFile))))
	require.NoError(t, c.ApplyConfigToMachineGroup(project, "web", "sidecars"))

	instance := filepath.Join(agentDir, "ilogtail_config.json")
	require.NoError(t, os.WriteFile(instance, []byte(`{
  "data_server_list": [{"endpoint": "http://`+srv.Addr()+`"}],
  "access_key_id": "`+agentID+`", "access_key_secret": "`+agentSecret+`",
  "user_config_file_path": "`+filepath.Join(agentDir, "user_config.json")+`",
  "check_point_filename": "`+filepath.Join(agentDir, "checkpoint")+`",
  "buffer_file_path": "`+filepath.Join(agentDir, "buffer")+`"
}`), 0o600))
	cmd := exec.Command(bin, "run", "--config-server", "http://"+srv.Addr(), "--heartbeat-interval", "200ms",
		"--output", "sls", "--http-listen", "", "--stop-delay", "0", "--file-poll", "50ms")
	cmd.Env = append(os.Environ(), "ALIYUN_LOGTAIL_CONFIG="+instance, "ALIYUN_LOGTAIL_USER_DEFINED_ID=shop-web",
		"SLUICE_ALLOWED_LOG_ROOTS="+root)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()

	from := time.Now().Add(-time.Hour).Unix()
	require.Eventually(t, func() bool {
		r, err := c.GetLogs(project, "app", "", from, time.Now().Add(time.Hour).Unix(), "shipped", 100, 0, false)
		return err == nil && r.Count == 20
	}, 30*time.Second, 100*time.Millisecond, "the 20 lines reach the server")
	r, err := c.GetLogs(project, "app", "", from, time.Now().Add(time.Hour).Unix(), "__tag__:__user_defined_id__:shop-web", 100, 0, false)
	require.NoError(t, err)
	require.EqualValues(t, 20, r.Count, "tagged with the agent's user-defined id")
}
