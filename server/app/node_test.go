package app_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/testenv"
)

// TestNodeSDKs runs testdata/node-sdks.cjs: the npm SDKs
// @alicloud/sls20201230 (default v1 hmac-sha256 signing) and aliyun-sdk
// against a real server, as their users call them (projects, logstores,
// indexes, PutLogs, GetLogs, GetHistograms, cursors and BatchGetLogs,
// consumer groups, ListTopics, GetProjectLogs, saved searches,
// dashboards). The SDKs come from
// hack/ensure-npm-sdks.sh ($SLUICE_CACHE/npm-sdks); without them or node
// the test skips, or fails under SLUICE_REQUIRE_ALL=1.
func TestNodeSDKs(t *testing.T) {
	node, err := exec.LookPath("node")
	modules := filepath.Join(testenv.Cache(), "npm-sdks", "node_modules")
	if err == nil {
		_, err = os.Stat(filepath.Join(modules, "@alicloud", "sls20201230", "package.json"))
	}
	if err != nil {
		testenv.SkipOrFail(t, "node or the npm SDKs are missing (%v): run hack/ensure-npm-sdks.sh", err)
	}
	e := start(t)
	cmd := exec.Command(node, "testdata/node-sdks.cjs")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "SLUICE_ENDPOINT="+e.Host(), "SLUICE_ADDR="+e.Addr(),
		"SLUICE_AK="+adminID, "SLUICE_SK="+adminSecret, "SLUICE_PROJECT=node-sdk-test")
	timer := time.AfterFunc(2*time.Minute, func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	t.Logf("node:\n%s", out)
	if err != nil || !strings.Contains(string(out), " 0 failed") {
		t.Fatalf("node SDK checks failed: %v", err)
	}
}
