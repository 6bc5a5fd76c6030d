package logconfig

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func readConfig(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return data
}

func TestGoodConfigsValidate(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Parse(readConfig(t, filepath.Base(f)))
			require.NoError(t, err)
			c.ApplyDefaults()
			require.NoError(t, c.Validate())
		})
	}
}

func TestParseFields(t *testing.T) {
	c, err := Parse(readConfig(t, "nginx-access.good.json"))
	require.NoError(t, err)
	d := c.InputDetail
	require.Equal(t, "nginx-access", c.ConfigName)
	require.Equal(t, InputTypeFile, c.InputType)
	require.Equal(t, LogTypeRegex, d.LogType)
	require.Equal(t, "/var/log/nginx", d.LogPath)
	require.Equal(t, 0, *d.MaxDepth, "an explicit 0 must survive, it means logPath only")
	require.False(t, *d.Preserve)
	require.False(t, *d.DiscardUnmatch)
	require.Nil(t, d.LocalStorage, "absent before ApplyDefaults")
	require.Len(t, d.Key, 7)
	require.Equal(t, []string{"^[45]\\d\\d$"}, d.FilterRegex)
	require.Equal(t, "***", d.SensitiveKeys[0].Const)
	require.Equal(t, 2048, d.Advanced.TailSizeKB)
	require.True(t, d.Advanced.ForceMultiConfig)
	require.Equal(t, []string{"*.gz"}, d.Advanced.Blacklist.FilenameBlacklist)
	require.Equal(t, "cn-hangzhou.log.aliyuncs.com", c.OutputDetail.Endpoint)
	require.EqualValues(t, 1700000000, c.CreateTime)
	require.Equal(t, []string{"configTags", "inputDetail.advanced.exactly_once_concurrency", "inputDetail.futureOption"}, c.UnknownKeys())

	c.ApplyDefaults()
	require.True(t, *c.InputDetail.LocalStorage)
	require.Equal(t, 0, *c.InputDetail.MaxDepth, "defaults never override what the user set")
	require.False(t, *c.InputDetail.Preserve)
}

// TestRoundTrip: what a user sends comes back, unknown keys included, and
// re-parsing the output gives the same config.
func TestRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.json")
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in := readConfig(t, filepath.Base(f))
			c, err := Parse(in)
			require.NoError(t, err)
			out, err := Marshal(c)
			require.NoError(t, err)
			require.JSONEq(t, normalize(t, in), string(out))

			c2, err := Parse(out)
			require.NoError(t, err)
			out2, err := Marshal(c2)
			require.NoError(t, err)
			require.Equal(t, string(out), string(out2))
			require.Equal(t, c.UnknownKeys(), c2.UnknownKeys())
		})
	}
}

// normalize re-encodes a document compactly. The good configs set no key to
// a zero value whose default is also zero (Marshal omits those), so after
// normalizing, input and output must be the same JSON.
func normalize(t *testing.T, in []byte) string {
	var v any
	require.NoError(t, json.Unmarshal(in, &v))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestRoundTripKeepsExplicitFalse(t *testing.T) {
	c, err := Parse([]byte(`{"configName":"a","inputDetail":{"localStorage":false,"preserve":false,"maxDepth":0,"autoExtend":false,"maxSendRate":-1}}`))
	require.NoError(t, err)
	out, err := Marshal(c)
	require.NoError(t, err)
	c2, err := Parse(out)
	require.NoError(t, err)
	c2.ApplyDefaults()
	d := c2.InputDetail
	require.False(t, *d.LocalStorage)
	require.False(t, *d.Preserve)
	require.False(t, *d.AutoExtend)
	require.Equal(t, 0, *d.MaxDepth)
}

func TestKnownFieldBeatsStaleExtra(t *testing.T) {
	c, err := Parse([]byte(`{"configName":"a","inputDetail":{"logPath":"/a"}}`))
	require.NoError(t, err)
	c.InputDetail.Extra = map[string]json.RawMessage{"LogPath": json.RawMessage(`"/stale"`), "x": json.RawMessage(`1`)}
	c.InputDetail.LogPath = "/new"
	out, err := Marshal(c)
	require.NoError(t, err)
	require.Contains(t, string(out), `"logPath":"/new"`)
	require.NotContains(t, string(out), "stale")
	require.Contains(t, string(out), `"x":1`)
}

func TestApplyDefaultsMatchesSDK(t *testing.T) {
	c, err := Parse([]byte(`{"configName":"a","inputDetail":{"logType":"common_reg_log","logPath":"/a","filePattern":"*.log"},"outputDetail":{"projectName":"p","logstoreName":"s"}}`))
	require.NoError(t, err)
	c.ApplyDefaults()
	require.NoError(t, c.Validate())
	d := c.InputDetail
	require.Equal(t, InputTypeFile, c.InputType, "inferred from logType")
	require.Equal(t, OutputTypeLogService, c.OutputType)
	require.True(t, *d.LocalStorage)
	require.True(t, *d.EnableTag)
	require.Equal(t, -1, *d.MaxSendRate)
	require.Equal(t, MergeTypeTopic, d.MergeType)
	require.Equal(t, EncodingUTF8, d.FileEncoding)
	require.Equal(t, 100, *d.MaxDepth)
	require.Equal(t, TopicFormatNone, d.TopicFormat)
	require.True(t, *d.Preserve)
	require.True(t, *d.DiscardUnmatch)
	require.Equal(t, ".*", d.LogBeginRegex)
	require.Equal(t, "(.*)", d.Regex)
	require.Equal(t, []string{"content"}, d.Key)

	before, err := Marshal(c)
	require.NoError(t, err)
	c.ApplyDefaults()
	after, err := Marshal(c)
	require.NoError(t, err)
	require.Equal(t, string(before), string(after), "ApplyDefaults is idempotent")

	dl, err := Parse([]byte(`{"inputDetail":{"logType":"delimiter_log"}}`))
	require.NoError(t, err)
	dl.ApplyDefaults()
	require.Equal(t, "\u0001", dl.InputDetail.Quote)
	require.True(t, *dl.InputDetail.AutoExtend)

	pl, err := Parse(readConfig(t, "stdout.good.json"))
	require.NoError(t, err)
	pl.InputType = ""
	pl.ApplyDefaults()
	require.Equal(t, InputTypePlugin, pl.InputType, "inferred from plugin")
	require.Empty(t, pl.InputDetail.FileEncoding)
}

func TestPluginPipeline(t *testing.T) {
	c, err := Parse(readConfig(t, "stdout.good.json"))
	require.NoError(t, err)
	p, err := c.InputDetail.PluginPipeline()
	require.NoError(t, err)
	require.Len(t, p.Inputs, 1)
	require.Equal(t, PluginInputDockerStdout, p.Inputs[0].Type)
	require.Equal(t, "processor_regex", p.Processors[0].Type)
	ds, err := ParseDockerStdout(p.Inputs[0].Detail)
	require.NoError(t, err)
	require.True(t, *ds.Stdout)
	require.False(t, *ds.Stderr)
	require.Equal(t, map[string]string{"aliyun_logs_app": ""}, ds.IncludeEnv)
	require.Equal(t, 3000, ds.BeginLineTimeoutMs)
	require.Equal(t, 512<<10, ds.MaxLogSize)
	require.Equal(t, 10<<10, ds.BeginLineCheckLength)
	require.EqualValues(t, 128<<10, ds.StartLogMaxOffset)

	none, err := (&InputDetail{}).PluginPipeline()
	require.NoError(t, err)
	require.Nil(t, none)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"configName":"a","inputDetail":{"maxDepth":"100"}}`,
			`config "a": inputDetail.maxDepth: expected an integer, got JSON string: write the value as an integer`},
		{`{"configName":"b","inputDetail":{"preserve":"yes"}}`,
			`config "b": inputDetail.preserve: expected a boolean (true or false), got JSON string: write the value as a boolean (true or false)`},
		{`{"configName":"c","inputDetail":{"key":"content"}}`,
			`config "c": inputDetail.key: expected an array, got JSON string: write the value as an array`},
		{`{"configName":"d","inputDetail":{"advanced":{"tail_size_kb":true}}}`,
			`config "d": inputDetail.advanced.tail_size_kb: expected an integer, got JSON bool: write the value as an integer`},
		{`{"configName":"e", "inputDetail": {`,
			`config "": (document): invalid JSON at byte 35: unexpected end of JSON input: fix the JSON syntax`},
		{`[1,2]`,
			`config "": (document): expected an object, got JSON array: write the value as an object`},
	} {
		_, err := Parse([]byte(tc.in))
		require.Error(t, err, tc.in)
		require.Equal(t, tc.want, err.Error(), tc.in)
		require.Len(t, ValidationErrors(err), 1)
	}
}

const tmpl = `{"configName":"nginx-access","inputType":"file","inputDetail":%s,"outputType":"LogService","outputDetail":{"projectName":"p","logstoreName":"s"}}`

func TestValidateMessages(t *testing.T) {
	for _, tc := range []struct {
		name   string
		detail string
		want   []string
	}{
		{"bad regex", `{"logType":"common_reg_log","logPath":"/var/log","filePattern":"*.log","regex":"(\\d+","key":["a"]}`, []string{
			`config "nginx-access": inputDetail.regex: invalid regular expression "(\d+": missing closing ): add the closing parenthesis`,
		}},
		{"key count", `{"logType":"common_reg_log","logPath":"/var/log","filePattern":"*.log","regex":"(\\S+) (\\S+) (\\S+) (.*)","key":["a","b","c"]}`, []string{
			`config "nginx-access": inputDetail.key: has 3 names but inputDetail.regex has 4 capture groups: list one key per group`,
		}},
		{"regex without key gets content default", `{"logType":"common_reg_log","logPath":"/var/log","filePattern":"*.log","regex":"(\\S+) (.*)"}`, []string{
			`config "nginx-access": inputDetail.key: has 1 name but inputDetail.regex has 2 capture groups: list one key per group`,
		}},
		{"duplicate and empty key", `{"logType":"common_reg_log","logPath":"/var/log","filePattern":"*.log","regex":"(a)(b)(c)","key":["x","","x"]}`, []string{
			`config "nginx-access": inputDetail.key[1]: is empty: name every field`,
			`config "nginx-access": inputDetail.key[2]: "x" repeats inputDetail.key[0]: give every field its own name`,
		}},
		{"lookahead", `{"logType":"common_reg_log","logPath":"/var/log","filePattern":"*.log","regex":"(a(?=b))","key":["a"]}`, []string{
			`config "nginx-access": inputDetail.regex: invalid regular expression "(a(?=b))": invalid or unsupported Perl syntax at "(?=": RE2 has no lookahead, lookbehind or backreferences: rewrite without (?=, (?!, (?<=, (?<! and \1`,
		}},
		{"unknown logType", `{"logType":"nginx_log","logPath":"/var/log","filePattern":"*.log"}`, []string{
			`config "nginx-access": inputDetail.logType: unknown log type "nginx_log": use one of common_reg_log, json_log, delimiter_log, apsara_log`,
		}},
		{"filters", `{"logType":"json_log","logPath":"/var/log","filePattern":"*.log","filterKey":["level","","x"],"filterRegex":["ERROR|WARN","[a-"]}`, []string{
			`config "nginx-access": inputDetail.filterRegex: has 2 entries but inputDetail.filterKey has 3 entries: give exactly one regex per key`,
			`config "nginx-access": inputDetail.filterKey[1]: is empty: name the field the regex is matched against`,
			`config "nginx-access": inputDetail.filterRegex[1]: invalid regular expression "[a-": missing closing ]: add the closing "]" or escape the "[" as \[`,
		}},
		{"paths", `{"logType":"json_log","logPath":"var/log/app","filePattern":"logs/*.log","maxDepth":1001}`, []string{
			`config "nginx-access": inputDetail.logPath: "var/log/app" is a relative path: use an absolute directory, e.g. /var/log/app`,
			`config "nginx-access": inputDetail.filePattern: "logs/*.log" contains '/': filePattern matches file names only; put the directory in logPath`,
			`config "nginx-access": inputDetail.maxDepth: 1001 is out of range: use 0 (logPath only) to 1000`,
		}},
		{"empty everything", `{"logType":"json_log","maxDepth":-1}`, []string{
			`config "nginx-access": inputDetail.logPath: is empty: set the directory that holds the log files, e.g. /var/log/nginx`,
			`config "nginx-access": inputDetail.filePattern: is empty: set a glob on the file name, e.g. *.log`,
			`config "nginx-access": inputDetail.maxDepth: -1 is out of range: use 0 (logPath only) to 1000`,
		}},
		{"bad glob", `{"logType":"json_log","logPath":"/var/log","filePattern":"[a.log"}`, []string{
			`config "nginx-access": inputDetail.filePattern: "[a.log" is not a valid glob: close every [ ] bracket or escape it with \`,
		}},
		{"topic and time", `{"logType":"json_log","logPath":"/var/log","filePattern":"*.log","topicFormat":"/var/log/(\\w+/.*","timeFormat":"yyyy-MM-dd HH:mm:ss","timeKey":"t"}`, []string{
			`config "nginx-access": inputDetail.topicFormat: invalid regular expression "/var/log/(\w+/.*": missing closing ): add the closing parenthesis`,
			`config "nginx-access": inputDetail.timeFormat: "yyyy-MM-dd HH:mm:ss" has no % conversions: timeFormat uses strftime, e.g. %Y-%m-%d %H:%M:%S for 2006-01-02 15:04:05`,
		}},
		{"time conversions", `{"logType":"json_log","logPath":"/var/log","filePattern":"*.log","timeFormat":"%Y-%m-%d %Q"}`, []string{
			`config "nginx-access": inputDetail.timeFormat: "%Y-%m-%d %Q" has unknown conversion %Q: use strftime conversions such as %Y %m %d %H %M %S %z`,
			`config "nginx-access": inputDetail.timeKey: is empty but timeFormat is set: name the field that holds the time, or clear timeFormat to use the collection time`,
		}},
		{"lone percent", `{"logType":"apsara_log","logPath":"/var/log","filePattern":"*.log","timeFormat":"%Y%"}`, []string{
			`config "nginx-access": inputDetail.timeFormat: "%Y%" ends with a lone %: write %% for a literal %`,
		}},
		{"customized topic", `{"logType":"json_log","logPath":"/var/log","filePattern":"*.log","topicFormat":"customized://"}`, []string{
			`config "nginx-access": inputDetail.topicFormat: customized:// has no topic: write the topic after it, e.g. customized://nginx`,
		}},
		{"delimiter", `{"logType":"delimiter_log","logPath":"/var/log","filePattern":"*.csv","quote":"''","timeKey":"when","timeFormat":"%s","key":["a","b"]}`, []string{
			`config "nginx-access": inputDetail.separator: is empty: set the character between fields, e.g. "," or "\t"`,
			`config "nginx-access": inputDetail.quote: "''" is not a single character: use one character such as "\""`,
			`config "nginx-access": inputDetail.timeKey: "when" is not one of inputDetail.key: use one of the column names`,
		}},
		{"encoding merge rate timezone", `{"logType":"json_log","logPath":"/var/log","filePattern":"*.log","fileEncoding":"latin1","mergeType":"shard","maxSendRate":-5,"logTimezone":"UTC+8"}`, []string{
			`config "nginx-access": inputDetail.fileEncoding: unknown encoding "latin1": use "utf8" or "gbk"`,
			`config "nginx-access": inputDetail.mergeType: unknown merge type "shard": use "topic" or "logstore"`,
			`config "nginx-access": inputDetail.maxSendRate: -5 is invalid: use -1 (no limit) or bytes per second`,
			`config "nginx-access": inputDetail.logTimezone: "UTC+8" is not GMT+HH:MM or GMT-HH:MM: write e.g. GMT+08:00`,
		}},
		{"sensitive keys", `{"logType":"json_log","logPath":"/var/log","filePattern":"*.log","sensitive_keys":[{"key":"","type":"sha1","regex_begin":"","regex_content":"(["}]}`, []string{
			`config "nginx-access": inputDetail.sensitive_keys[0].key: is empty: name the field to mask`,
			`config "nginx-access": inputDetail.sensitive_keys[0].type: unknown type "sha1": use "const" (replace with const) or "md5" (replace with its MD5)`,
			`config "nginx-access": inputDetail.sensitive_keys[0].regex_begin: is empty: set the regex that precedes the sensitive part, e.g. 'password':'`,
			`config "nginx-access": inputDetail.sensitive_keys[0].regex_content: invalid regular expression "([": missing closing ]: add the closing "]" or escape the "[" as \[`,
		}},
		{"advanced", `{"logType":"json_log","logPath":"/var/log","filePattern":"*.log","dockerIncludeLabel":{"app":"^(web$"},"advanced":{"tail_size_kb":-1,"blacklist":{"dir_blacklist":["tmp"],"filename_blacklist":["a/b.log"],"filepath_blacklist":["/x/[.log"]},"k8s":{"K8sPodRegex":"*"}}}`, []string{
			`config "nginx-access": inputDetail.dockerIncludeLabel.app: invalid regular expression "^(web$": missing closing ): add the closing parenthesis`,
			`config "nginx-access": inputDetail.advanced.tail_size_kb: -1 is negative: use a size in KiB (default 1024)`,
			`config "nginx-access": inputDetail.advanced.blacklist.dir_blacklist[0]: "tmp" is not absolute: list directories as absolute paths (globs allowed), e.g. /var/log/tmp`,
			`config "nginx-access": inputDetail.advanced.blacklist.filename_blacklist[0]: "a/b.log" contains '/': list file names only; use filepath_blacklist for paths`,
			`config "nginx-access": inputDetail.advanced.blacklist.filepath_blacklist[0]: "/x/[.log" is not a valid glob: close every [ ] bracket or escape it with \`,
			`config "nginx-access": inputDetail.advanced.k8s.K8sPodRegex: invalid regular expression "*": missing argument to repetition operator: put something before the *, + or ?, or escape it (\*)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(fmt.Appendf(nil, tmpl, tc.detail))
			require.NoError(t, err)
			c.ApplyDefaults()
			err = c.Validate()
			require.Error(t, err)
			var got []string
			for _, ve := range ValidationErrors(err) {
				got = append(got, ve.Error())
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, strings.Join(tc.want, "\n"), err.Error())
		})
	}
}

func TestValidateTopLevel(t *testing.T) {
	c, err := Parse([]byte(`{"configName":"bad/name","inputType":"syslog","outputType":"Kafka","outputDetail":{}}`))
	require.NoError(t, err)
	var got []string
	for _, ve := range ValidationErrors(c.Validate()) {
		got = append(got, ve.Error())
	}
	require.Equal(t, []string{
		`config "bad/name": configName: contains "/": use only letters, digits, '-', '_' and '.'`,
		`config "bad/name": inputType: "syslog" is not supported by Sluice: use "file" or "plugin"`,
		`config "bad/name": outputType: unknown output type "Kafka": use "LogService"`,
		`config "bad/name": outputDetail.projectName: is empty: name the project the logs go to`,
		`config "bad/name": outputDetail.logstoreName: is empty: name the logstore the logs go to`,
	}, got)

	c, err = Parse([]byte(`{"outputDetail":{"projectName":"p","logstoreName":"s"}}`))
	require.NoError(t, err)
	c.ApplyDefaults()
	got = nil
	for _, ve := range ValidationErrors(c.Validate()) {
		got = append(got, ve.Error())
	}
	require.Equal(t, []string{
		`config "": configName: is empty: name the config (letters, digits, '-', '_', '.'; at most 128 characters)`,
		`config "": inputType: is empty: set "file" (files) or "plugin" (plugin inputs such as container stdout)`,
	}, got)
}

func TestValidatePlugin(t *testing.T) {
	for _, tc := range []struct {
		name, detail string
		want         []string
	}{
		{"missing", `{}`, []string{
			`config "nginx-access": inputDetail.plugin: is empty: a plugin config needs {"inputs": [{"type": "service_docker_stdout", "detail": {...}}]}`,
		}},
		{"not an object", `{"plugin":[1]}`, []string{
			`config "nginx-access": inputDetail.plugin: is not a plugin pipeline object: json: cannot unmarshal array into Go value of type logconfig.Plugin: write {"inputs": [...], "processors": [...]}`,
		}},
		{"no inputs, bad items", `{"logType":"json_log","plugin":{"processors":[{"detail":{}}]}}`, []string{
			`config "nginx-access": inputDetail.plugin.inputs: is empty: add an input, e.g. {"type": "service_docker_stdout", "detail": {}}`,
			`config "nginx-access": inputDetail.logType: "json_log" is set on a plugin config: remove it, or use inputType "file"`,
			`config "nginx-access": inputDetail.plugin.processors[0].type: is empty: name the plugin type, e.g. service_docker_stdout`,
		}},
		{"stdout detail", `{"plugin":{"inputs":[{"type":"service_docker_stdout","detail":{"K8sPodRegex":"(","BeginLineRegex":"\\"}}]}}`, []string{
			`config "nginx-access": inputDetail.plugin.inputs[0].detail.K8sPodRegex: invalid regular expression "(": missing closing ): add the closing parenthesis`,
			`config "nginx-access": inputDetail.plugin.inputs[0].detail.BeginLineRegex: invalid regular expression "\": trailing backslash at end of expression: double the final backslash (\\) to match a literal backslash`,
		}},
		{"stdout types", `{"plugin":{"inputs":[{"type":"service_docker_stdout","detail":{"Stdout":"yes"}}]}}`, []string{
			`config "nginx-access": inputDetail.plugin.inputs[0].detail: json: cannot unmarshal string into Go struct field DockerStdout.Stdout of type bool: fix the field types`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(fmt.Appendf(nil, strings.Replace(tmpl, `"file"`, `"plugin"`, 1), tc.detail))
			require.NoError(t, err)
			c.ApplyDefaults()
			var got []string
			for _, ve := range ValidationErrors(c.Validate()) {
				got = append(got, ve.Error())
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestValidationErrorJSON(t *testing.T) {
	c, err := Parse(fmt.Appendf(nil, tmpl, `{"logType":"json_log","logPath":"/a","filePattern":"*","filterKey":["a"],"filterRegex":["("]}`))
	require.NoError(t, err)
	b, err := json.Marshal(ValidationErrors(c.Validate()))
	require.NoError(t, err)
	require.JSONEq(t, `[{"config":"nginx-access","path":"inputDetail.filterRegex[0]","message":"invalid regular expression \"(\": missing closing ): add the closing parenthesis"}]`, string(b))
}

func TestWarnings(t *testing.T) {
	c, err := Parse([]byte(`{"configName":"nginx","logsample":"x","inputDetail":{"logpth":"/a","file_pattern":"*.log","totallyNew":1,"advanced":{"tail_size":5}},"outputDetail":{"logstore":"s"}}`))
	require.NoError(t, err)
	var got []string
	for _, w := range c.Warnings() {
		got = append(got, w.Error())
	}
	require.Equal(t, []string{
		`config "nginx": inputDetail.file_pattern: unknown key, kept but not used: did you mean "filePattern"?`,
		`config "nginx": inputDetail.logpth: unknown key, kept but not used: did you mean "logPath"?`,
		`config "nginx": inputDetail.totallyNew: unknown key, kept but not used: remove it if it is a mistake`,
		`config "nginx": outputDetail.logstore: unknown key, kept but not used: did you mean "logstoreName"?`,
		`config "nginx": inputDetail.advanced.tail_size: unknown key, kept but not used: did you mean "tail_size_kb"?`,
	}, got)
	require.Equal(t, "x", c.LogSample, "a case-insensitive match is the field, as in encoding/json")

	good, err := Parse(readConfig(t, "app-json.good.json"))
	require.NoError(t, err)
	require.Empty(t, good.Warnings())
}

// TestCheckListsEveryStage checks that a wrong JSON type does not hide
// the other problems of a config (and is not reported twice).
func TestCheckListsEveryStage(t *testing.T) {
	raw := []byte(`{"configName":"a","inputType":"file","inputDetail":{"logType":"common_reg_log","logPath":"/x","filePattern":"*.log",
		"regex":"(a","key":["k"],"maxDepth":"deep"},"outputType":"LogService","outputDetail":{"projectName":"p","logstoreName":"l"}}`)
	errs, _ := Check(raw)
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	require.ElementsMatch(t, []string{"inputDetail.maxDepth", "inputDetail.regex"}, paths)

	// Two mistyped keys in different objects: both listed.
	errs, _ = Check([]byte(strings.Replace(string(raw), `"logstoreName":"l"`, `"logstoreName":5`, 1)))
	paths = paths[:0]
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	require.ElementsMatch(t, []string{"inputDetail.maxDepth", "inputDetail.regex", "outputDetail.logstoreName"}, paths)

	errs, _ = Check([]byte(`{"configName": "a",`))
	require.Len(t, errs, 1)
	require.Equal(t, "(document)", errs[0].Path)
	require.Contains(t, errs[0].Message, "invalid JSON")
}
