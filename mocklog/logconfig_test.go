package mocklog

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/logconfig"
)

// TestFormatsAreValidLogtailConfigs: the regexes and time formats mocklog
// documents for its output are accepted by logconfig, so e2e tests can use
// them verbatim.
func TestFormatsAreValidLogtailConfigs(t *testing.T) {
	for _, d := range []logconfig.InputDetail{
		{LogType: logconfig.LogTypeRegex, LogPath: "/var/log/nginx", FilePattern: "access.log",
			Regex: NginxRegex, Key: NginxKeys(), TimeFormat: NginxTimeFormat},
		{LogType: logconfig.LogTypeRegex, LogPath: "/var/log/app", FilePattern: "*.log", LogBeginRegex: JavaBeginRegex},
	} {
		c := &logconfig.Config{ConfigName: "mocklog", InputType: logconfig.InputTypeFile, InputDetail: d,
			OutputDetail: logconfig.OutputDetail{ProjectName: "p", LogstoreName: "s"}}
		c.ApplyDefaults()
		require.NoError(t, c.Validate())
	}
}
