// Package logconfig is the Logtail collection config as users, the console,
// the AliyunLogConfig CRD and the aliyun-log-go-sdk write it (configName,
// inputType, camelCase inputDetail, outputDetail), and the agent's own
// instance config (ilogtail_config.json keys plus environment variables).
//
// It is shared by sluice-agent (what to collect and how), sluice-server
// (CreateConfig/GetConfig store and return it) and sluice-controller (CRD
// logtailConfig → CreateConfig). The JSON is decoded with encoding/json into
// plain structs; keys this package does not know are kept and written back, so
// the server returns what the user sent even when a newer client sends fields
// Sluice has never heard of.
//
// Fields whose SDK default is not the Go zero value (localStorage, maxDepth,
// preserve, …) are pointers, so "absent" and "false/0" stay distinct across
// a round trip; ApplyDefaults fills every one of them, after which they are
// never nil.
package logconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Input types.
const (
	InputTypeFile   = "file"
	InputTypePlugin = "plugin"
)

// File log types (inputDetail.logType).
const (
	LogTypeRegex     = "common_reg_log"
	LogTypeJSON      = "json_log"
	LogTypeDelimiter = "delimiter_log"
	LogTypeApsara    = "apsara_log"
)

// LogTypes lists the accepted inputDetail.logType values, in the order error
// messages show them.
func LogTypes() []string {
	return []string{LogTypeRegex, LogTypeJSON, LogTypeDelimiter, LogTypeApsara}
}

// OutputTypeLogService is the only output type.
const OutputTypeLogService = "LogService"

// Topic formats other than a path regular expression.
const (
	TopicFormatNone       = "none"
	TopicFormatGroupTopic = "group_topic"
	// TopicFormatCustomizedPrefix followed by the topic: customized://my-topic.
	TopicFormatCustomizedPrefix = "customized://"
)

// Merge types (inputDetail.mergeType).
const (
	MergeTypeTopic    = "topic"
	MergeTypeLogstore = "logstore"
)

// File encodings (inputDetail.fileEncoding).
const (
	EncodingUTF8 = "utf8"
	EncodingGBK  = "gbk"
)

// Config is one Logtail collection config.
type Config struct {
	ConfigName   string       `json:"configName"`
	LogSample    string       `json:"logSample,omitempty"`
	InputType    string       `json:"inputType"`
	InputDetail  InputDetail  `json:"inputDetail"`
	OutputType   string       `json:"outputType"`
	OutputDetail OutputDetail `json:"outputDetail"`
	// Set by the server; seconds since the epoch.
	CreateTime     int64 `json:"createTime,omitempty"`
	LastModifyTime int64 `json:"lastModifyTime,omitempty"`

	// Extra holds top-level keys this package does not know, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// OutputDetail says where the logs go.
type OutputDetail struct {
	ProjectName  string `json:"projectName"`
	LogstoreName string `json:"logstoreName"`
	Endpoint     string `json:"endpoint,omitempty"`
	CompressType string `json:"compressType,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// InputDetail is inputDetail: one flat struct for every log type, as the
// JSON is flat. Which fields matter depends on LogType.
type InputDetail struct {
	// File input.
	LogType        string `json:"logType,omitempty"`
	LogPath        string `json:"logPath,omitempty"`
	FilePattern    string `json:"filePattern,omitempty"`
	MaxDepth       *int   `json:"maxDepth,omitempty"` // default 100; 0 = logPath only
	TopicFormat    string `json:"topicFormat,omitempty"`
	TimeFormat     string `json:"timeFormat,omitempty"` // strftime; empty = collection time
	TimeKey        string `json:"timeKey,omitempty"`
	Preserve       *bool  `json:"preserve,omitempty"` // default true
	PreserveDepth  int    `json:"preserveDepth,omitempty"`
	FileEncoding   string `json:"fileEncoding,omitempty"`   // utf8 | gbk
	DiscardUnmatch *bool  `json:"discardUnmatch,omitempty"` // default true
	TailExisted    bool   `json:"tailExisted,omitempty"`
	DiscardNonUTF8 bool   `json:"discardNonUtf8,omitempty"`
	DelaySkipBytes int    `json:"delaySkipBytes,omitempty"`

	// Containers (DaemonSet mode): logPath is inside the selected containers.
	DockerFile         bool              `json:"dockerFile,omitempty"`
	DockerIncludeLabel map[string]string `json:"dockerIncludeLabel,omitempty"`
	DockerExcludeLabel map[string]string `json:"dockerExcludeLabel,omitempty"`
	DockerIncludeEnv   map[string]string `json:"dockerIncludeEnv,omitempty"`
	DockerExcludeEnv   map[string]string `json:"dockerExcludeEnv,omitempty"`

	// common_reg_log and apsara_log.
	LogBeginRegex    string   `json:"logBeginRegex,omitempty"` // ".*" = every line is an event
	Regex            string   `json:"regex,omitempty"`
	Key              []string `json:"key,omitempty"`
	CustomizedFields string   `json:"customizedFields,omitempty"`

	// delimiter_log.
	Separator          string `json:"separator,omitempty"`
	Quote              string `json:"quote,omitempty"`
	AutoExtend         *bool  `json:"autoExtend,omitempty"` // default true
	AcceptNoEnoughKeys bool   `json:"acceptNoEnoughKeys,omitempty"`

	// Common to every input.
	LocalStorage    *bool          `json:"localStorage,omitempty"` // default true
	FilterKey       []string       `json:"filterKey,omitempty"`
	FilterRegex     []string       `json:"filterRegex,omitempty"`
	ShardHashKey    []string       `json:"shardHashKey,omitempty"`
	EnableTag       *bool          `json:"enableTag,omitempty"` // default true
	EnableRawLog    bool           `json:"enableRawLog,omitempty"`
	MaxSendRate     *int           `json:"maxSendRate,omitempty"` // default -1 (no limit)
	SendRateExpire  int            `json:"sendRateExpire,omitempty"`
	SensitiveKeys   []SensitiveKey `json:"sensitive_keys,omitempty"`
	MergeType       string         `json:"mergeType,omitempty"`
	DelayAlarmBytes int            `json:"delayAlarmBytes,omitempty"`
	AdjustTimezone  bool           `json:"adjustTimezone,omitempty"`
	LogTimezone     string         `json:"logTimezone,omitempty"` // GMT+08:00
	Priority        int            `json:"priority,omitempty"`

	Advanced *Advanced `json:"advanced,omitempty"`
	// Plugin is inputDetail.plugin ({inputs, processors, aggregators,
	// flushers}) verbatim; decode it with PluginPipeline.
	Plugin json.RawMessage `json:"plugin,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// SensitiveKey is one sensitive_keys entry: mask part of a field's value.
type SensitiveKey struct {
	Key          string `json:"key"`
	Type         string `json:"type"` // const | md5
	RegexBegin   string `json:"regex_begin"`
	RegexContent string `json:"regex_content"`
	All          bool   `json:"all"`
	Const        string `json:"const"`
}

// Sensitive key types.
const (
	SensitiveTypeConst = "const"
	SensitiveTypeMD5   = "md5"
)

// Advanced is inputDetail.advanced.
type Advanced struct {
	K8s              *K8sSelector `json:"k8s,omitempty"`
	Blacklist        *Blacklist   `json:"blacklist,omitempty"`
	TailSizeKB       int          `json:"tail_size_kb,omitempty"` // 0 = instance default_tail_limit_kb
	ForceMultiConfig bool         `json:"force_multiconfig,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// Blacklist is advanced.blacklist: globs of paths never collected.
type Blacklist struct {
	DirBlacklist      []string `json:"dir_blacklist,omitempty"`
	FilenameBlacklist []string `json:"filename_blacklist,omitempty"`
	FilepathBlacklist []string `json:"filepath_blacklist,omitempty"`
}

// K8sSelector is advanced.k8s: which containers a dockerFile config reads.
type K8sSelector struct {
	K8sNamespaceRegex   string            `json:"K8sNamespaceRegex,omitempty"`
	K8sPodRegex         string            `json:"K8sPodRegex,omitempty"`
	K8sContainerRegex   string            `json:"K8sContainerRegex,omitempty"`
	IncludeK8sLabel     map[string]string `json:"IncludeK8sLabel,omitempty"`
	ExcludeK8sLabel     map[string]string `json:"ExcludeK8sLabel,omitempty"`
	ExternalK8sLabelTag map[string]string `json:"ExternalK8sLabelTag,omitempty"`
	ExternalEnvTag      map[string]string `json:"ExternalEnvTag,omitempty"`
}

// Parse decodes one collection config. It does not apply defaults or
// validate: call ApplyDefaults and Validate. A JSON syntax or type error is
// returned as a *ValidationError naming the key when it can be located.
func Parse(data []byte) (*Config, error) {
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, decodeError(configNameOf(data), err)
	}
	return &c, nil
}

// Marshal encodes c, unknown keys included.
func Marshal(c *Config) ([]byte, error) { return json.Marshal(c) }

// configNameOf digs configName out of a document that failed to decode, so
// the error still names the config.
func configNameOf(data []byte) string {
	var probe struct {
		ConfigName json.RawMessage `json:"configName"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(probe.ConfigName, &s) != nil {
		return ""
	}
	return s
}

func decodeError(name string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		path := te.Field
		if path == "" {
			path = "(document)"
		}
		return &ValidationError{Config: name, Path: path,
			Message: fmt.Sprintf("expected %s, got JSON %s: write the value as %s", jsonKind(te.Type), te.Value, jsonKind(te.Type))}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &ValidationError{Config: name, Path: "(document)",
			Message: fmt.Sprintf("invalid JSON at byte %d: %v: fix the JSON syntax", se.Offset, se)}
	}
	return &ValidationError{Config: name, Path: "(document)", Message: err.Error()}
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a JSON value"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// The alias types drop the methods below so the plain struct codec can be
// reused inside them.
type (
	configFields       Config
	outputDetailFields OutputDetail
	inputDetailFields  InputDetail
	advancedFields     Advanced
)

func (c *Config) UnmarshalJSON(data []byte) error {
	return unmarshalKeepingExtra(data, (*configFields)(c), &c.Extra)
}

func (c Config) MarshalJSON() ([]byte, error) {
	return marshalWithExtra((*configFields)(&c), c.Extra)
}

func (d *OutputDetail) UnmarshalJSON(data []byte) error {
	return unmarshalKeepingExtra(data, (*outputDetailFields)(d), &d.Extra)
}

func (d OutputDetail) MarshalJSON() ([]byte, error) {
	return marshalWithExtra((*outputDetailFields)(&d), d.Extra)
}

func (d *InputDetail) UnmarshalJSON(data []byte) error {
	return unmarshalKeepingExtra(data, (*inputDetailFields)(d), &d.Extra)
}

func (d InputDetail) MarshalJSON() ([]byte, error) {
	return marshalWithExtra((*inputDetailFields)(&d), d.Extra)
}

func (a *Advanced) UnmarshalJSON(data []byte) error {
	return unmarshalKeepingExtra(data, (*advancedFields)(a), &a.Extra)
}

func (a Advanced) MarshalJSON() ([]byte, error) {
	return marshalWithExtra((*advancedFields)(&a), a.Extra)
}

// unmarshalKeepingExtra decodes data into the struct behind known and keeps
// every key no field claims in *extra. Matching follows encoding/json: exact
// name first, else case-insensitive.
func unmarshalKeepingExtra(data []byte, known any, extra *map[string]json.RawMessage) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(data, known); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	names := jsonNames(reflect.TypeOf(known).Elem())
	*extra = nil
	for k, v := range all {
		if isKnown(names, k) {
			continue
		}
		if *extra == nil {
			*extra = make(map[string]json.RawMessage)
		}
		(*extra)[k] = v
	}
	return nil
}

func marshalWithExtra(known any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(known)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	names := jsonNames(reflect.TypeOf(known).Elem())
	for k, v := range extra {
		if isKnown(names, k) {
			continue // a known field's current value wins over a stale copy
		}
		all[k] = v
	}
	return json.Marshal(all) // map keys are written sorted: stable output
}

func isKnown(names []string, key string) bool {
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return true
		}
	}
	return false
}

// jsonNames lists the JSON keys of a struct's fields.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// UnknownKeys lists the key paths (inputDetail.logpth, advanced.x, …) that
// this package did not recognise and only carries along: typos show up here,
// so the server and console can warn about them.
func (c *Config) UnknownKeys() []string {
	var out []string
	add := func(prefix string, m map[string]json.RawMessage) {
		for k := range m {
			out = append(out, prefix+k)
		}
	}
	add("", c.Extra)
	add("inputDetail.", c.InputDetail.Extra)
	add("outputDetail.", c.OutputDetail.Extra)
	if c.InputDetail.Advanced != nil {
		add("inputDetail.advanced.", c.InputDetail.Advanced.Extra)
	}
	sort.Strings(out)
	return out
}

// Plugin is inputDetail.plugin decoded: the plugin pipeline of a plugin
// config (service_docker_stdout and others), or extra processors of a file
// config. Details stay raw: each plugin decodes its own.
type Plugin struct {
	Inputs      []PluginItem `json:"inputs,omitempty"`
	Processors  []PluginItem `json:"processors,omitempty"`
	Aggregators []PluginItem `json:"aggregators,omitempty"`
	Flushers    []PluginItem `json:"flushers,omitempty"`
}

// PluginItem is one plugin: its type and its detail object.
type PluginItem struct {
	Type   string          `json:"type"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

// PluginInputDockerStdout is the container stdout/stderr input.
const PluginInputDockerStdout = "service_docker_stdout"

// PluginPipeline decodes inputDetail.plugin; nil, nil when there is none.
func (d *InputDetail) PluginPipeline() (*Plugin, error) {
	if len(d.Plugin) == 0 || string(d.Plugin) == "null" {
		return nil, nil
	}
	var p Plugin
	if err := json.Unmarshal(d.Plugin, &p); err != nil {
		return nil, fmt.Errorf("decode inputDetail.plugin: %w", err)
	}
	return &p, nil
}

// DockerStdout is the detail of a service_docker_stdout input. Field names
// are the plugin's PascalCase keys.
type DockerStdout struct {
	Stdout               *bool             `json:"Stdout,omitempty"` // default true
	Stderr               *bool             `json:"Stderr,omitempty"` // default true
	IncludeLabel         map[string]string `json:"IncludeLabel,omitempty"`
	ExcludeLabel         map[string]string `json:"ExcludeLabel,omitempty"`
	IncludeEnv           map[string]string `json:"IncludeEnv,omitempty"`
	ExcludeEnv           map[string]string `json:"ExcludeEnv,omitempty"`
	IncludeK8sLabel      map[string]string `json:"IncludeK8sLabel,omitempty"`
	ExcludeK8sLabel      map[string]string `json:"ExcludeK8sLabel,omitempty"`
	K8sNamespaceRegex    string            `json:"K8sNamespaceRegex,omitempty"`
	K8sPodRegex          string            `json:"K8sPodRegex,omitempty"`
	K8sContainerRegex    string            `json:"K8sContainerRegex,omitempty"`
	BeginLineRegex       string            `json:"BeginLineRegex,omitempty"`
	BeginLineTimeoutMs   int               `json:"BeginLineTimeoutMs,omitempty"`   // default 3000
	BeginLineCheckLength int               `json:"BeginLineCheckLength,omitempty"` // default 10 KiB
	MaxLogSize           int               `json:"MaxLogSize,omitempty"`           // default 512 KiB
	StartLogMaxOffset    int64             `json:"StartLogMaxOffset,omitempty"`    // default 128 KiB
	ExternalK8sLabelTag  map[string]string `json:"ExternalK8sLabelTag,omitempty"`
	ExternalEnvTag       map[string]string `json:"ExternalEnvTag,omitempty"`
}

// ParseDockerStdout decodes a service_docker_stdout detail and fills its
// defaults.
func ParseDockerStdout(detail json.RawMessage) (*DockerStdout, error) {
	var d DockerStdout
	if len(detail) > 0 {
		if err := json.Unmarshal(detail, &d); err != nil {
			return nil, fmt.Errorf("decode %s detail: %w", PluginInputDockerStdout, err)
		}
	}
	d.ApplyDefaults()
	return &d, nil
}

// ApplyDefaults fills the documented defaults of unset fields.
func (d *DockerStdout) ApplyDefaults() {
	if d.Stdout == nil {
		d.Stdout = ptr(true)
	}
	if d.Stderr == nil {
		d.Stderr = ptr(true)
	}
	if d.BeginLineTimeoutMs == 0 {
		d.BeginLineTimeoutMs = 3000
	}
	if d.BeginLineCheckLength == 0 {
		d.BeginLineCheckLength = 10 << 10
	}
	if d.MaxLogSize == 0 {
		d.MaxLogSize = 512 << 10
	}
	if d.StartLogMaxOffset == 0 {
		d.StartLogMaxOffset = 128 << 10
	}
}

func ptr[T any](v T) *T { return &v }
