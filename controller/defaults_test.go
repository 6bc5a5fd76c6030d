package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/sluicelog/sluice/controller/api/v1alpha1"
)

// A console-first user finds the default project and machine group before
// any AliyunLogConfig exists, and what the controller did is searchable in
// config-operation-log — here, guide 001's access-log resource as printed
// (10 keys for 11 regex groups), refused with the reason.
func TestEnvtestDefaultsAndOperationLog(t *testing.T) {
	needEnv(t)
	select {
	case <-suite.defaults:
	case <-time.After(time.Minute):
		t.Fatal("defaults never created")
	}
	project, group := DefaultProject(itClusterID), DefaultMachineGroup(itClusterID)
	mg, err := suite.sls.GetMachineGroup(project, group)
	require.NoError(t, err)
	assert.Equal(t, "userdefined", mg.MachineIDType)
	assert.Equal(t, []string{group}, mg.MachineIDList)
	idx, err := suite.sls.GetIndex(project, OperationLogstore)
	require.NoError(t, err)
	assert.Contains(t, idx.Keys, "reason")

	ctx := context.Background()
	createNamespace(t, "oplog")
	obj := &v1alpha1.AliyunLogConfig{}
	obj.Namespace, obj.Name = "oplog", "nginx-log-access-example"
	obj.Spec.Logstore = "nginx-access"
	obj.Spec.LogtailConfig.InputType = "file"
	obj.Spec.LogtailConfig.ConfigName = "nginx-log-access-example"
	obj.Spec.LogtailConfig.InputDetail = &apiextensionsv1.JSON{Raw: []byte(`{"logType":"common_reg_log","logPath":"/var/log/nginx","filePattern":"access.log","dockerFile":false,"logBeginRegex":".*",` +
		`"regex":"(\\S+)\\s(\\S+)\\s\\S+\\s\\S+\\s\"(\\S+)\\s(\\S+)\\s+([^\"]+)\"\\s+(\\S+)\\s(\\S+)\\s(\\d+)\\s(\\d+)\\s(\\S+)\\s\"([^\"]+)\"\\s.*",` +
		`"key":["time","ip","method","url","protocol","latency","payload","status","response-size","ser-agent\""]}`)}
	require.NoError(t, suite.k8s.Create(ctx, obj))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := suite.sls.GetLogs(project, OperationLogstore, "", 0, time.Now().Add(time.Hour).Unix(), "reason: InvalidSpec", 100, 0, false)
		if !assert.NoError(c, err) {
			return
		}
		var found map[string]string
		for _, l := range resp.Logs {
			if l["resource"] == "oplog/nginx-log-access-example" {
				found = l
			}
		}
		if assert.NotNil(c, found, "operation record of the refused resource") {
			assert.Equal(c, "Warning", found["type"])
			assert.Contains(c, found["message"], "spec.logtailConfig.inputDetail.key")
			assert.Equal(c, "nginx-log-access-example", found["config"])
			assert.Equal(c, itClusterID, found["cluster"])
		}
	}, time.Minute, 300*time.Millisecond)
}
