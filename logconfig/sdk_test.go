package logconfig

import (
	"encoding/json"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
)

// TestDefaultsMatchSDK: for every log type, the keys the SDK's
// AddNecessaryInputConfigField fills have the same values after our
// ApplyDefaults (a key we omit must be the zero value the SDK wrote).
func TestDefaultsMatchSDK(t *testing.T) {
	for _, lt := range LogTypes() {
		t.Run(lt, func(t *testing.T) {
			sdk := map[string]any{"logType": lt}
			sls.AddNecessaryInputConfigField(sdk)
			sdkJSON, err := json.Marshal(sdk)
			require.NoError(t, err)
			var want map[string]any
			require.NoError(t, json.Unmarshal(sdkJSON, &want))

			c, err := Parse([]byte(`{"inputType":"file","inputDetail":{"logType":"` + lt + `"}}`))
			require.NoError(t, err)
			c.ApplyDefaults()
			oursJSON, err := json.Marshal(c.InputDetail)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(oursJSON, &got))

			for k, v := range want {
				g, ok := got[k]
				if !ok {
					require.Contains(t, []any{"", false, float64(0)}, v, "%s: we omit it, so the SDK's value must be the zero value", k)
					continue
				}
				require.Equal(t, v, g, k)
			}
		})
	}
}

// TestSDKConfigsRoundTrip: configs built with the SDK's Init functions and
// encoded as the SDK sends them parse, validate and come back with every key
// the SDK sent.
func TestSDKConfigsRoundTrip(t *testing.T) {
	regex := sls.RegexConfigInputDetail{}
	sls.InitRegexConfigInputDetail(&regex)
	regex.LogPath, regex.FilePattern = "/var/log/app", "*.log"
	regex.Key = []string{"content"}
	js := sls.JSONConfigInputDetail{}
	sls.InitJSONConfigInputDetail(&js)
	js.LogPath, js.FilePattern = "/var/log/app", "*.json"
	delim := sls.DelimiterConfigInputDetail{}
	sls.InitDelimiterConfigInputDetail(&delim)
	delim.LogPath, delim.FilePattern, delim.Separator, delim.Key = "/var/log/app", "*.csv", ",", []string{"a", "b"}
	aps := sls.ApsaraLogConfigInputDetail{}
	sls.InitApsaraLogConfigInputDetail(&aps)
	aps.LogPath, aps.FilePattern = "/apsara", "*.LOG"
	plugin := sls.PluginLogConfigInputDetail{}
	sls.InitPluginLogConfigInputDetail(&plugin)
	plugin.PluginDetail.Inputs = []*sls.PluginInputItem{sls.CreatePluginInputItem(sls.PluginInputTypeDockerStdout, sls.CreateConfigPluginDockerStdout())}

	for name, tc := range map[string]struct {
		inputType string
		detail    any
	}{
		"regex": {"file", regex}, "json": {"file", js}, "delimiter": {"file", delim},
		"apsara": {"file", aps}, "plugin": {"plugin", plugin},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := sls.LogConfig{Name: "sdk-" + name, InputType: tc.inputType, InputDetail: tc.detail,
				OutputType: sls.OutputTypeLogService, OutputDetail: sls.OutputDetail{ProjectName: "p", LogStoreName: "s"}}
			body, err := json.Marshal(cfg)
			require.NoError(t, err)
			c, err := Parse(body)
			require.NoError(t, err)
			c.ApplyDefaults()
			require.NoError(t, c.Validate())
			require.Empty(t, c.UnknownKeys(), "every key the SDK sends is known")

			out, err := Marshal(c)
			require.NoError(t, err)
			var sent, back map[string]any
			require.NoError(t, json.Unmarshal(body, &sent))
			require.NoError(t, json.Unmarshal(out, &back))
			sentDetail, backDetail := sent["inputDetail"].(map[string]any), back["inputDetail"].(map[string]any)
			for k, v := range sentDetail {
				if bv, ok := backDetail[k]; ok {
					require.Equal(t, v, bv, k)
				} else {
					require.Contains(t, []any{"", false, float64(0), nil}, v, "%s omitted on the way back must be a zero value", k)
				}
			}
		})
	}
}
