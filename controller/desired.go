package controller

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/sluicelog/sluice/controller/api/v1alpha1"
	"github.com/sluicelog/sluice/logconfig"
)

// Defaults the controller fills into specs that leave them out.
const (
	DefaultShardCount    = 2
	DefaultLifeCycleDays = 90
	DefaultMaxSplitShard = 32
	// MaxShardCount is the upper bound of spec.shardCount.
	MaxShardCount = 10
)

// DefaultProject is the project of specs without one: k8s-log-<cluster-id>.
func DefaultProject(clusterID string) string { return "k8s-log-" + clusterID }

// DefaultMachineGroup is the machine group of specs without one:
// k8s-group-<cluster-id>; DaemonSet agents carry it as their user-defined id.
func DefaultMachineGroup(clusterID string) string { return "k8s-group-" + clusterID }

// SpecError is a problem with a resource's spec: the field path
// (spec.logtailConfig.inputDetail.regex) and what to change.
type SpecError struct {
	Field   string
	Message string
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Message }

// specErrors joins several SpecErrors into one status message.
type specErrors []*SpecError

func (e specErrors) Error() string {
	msgs := make([]string, len(e))
	for i, se := range e {
		msgs[i] = se.Error()
	}
	return strings.Join(msgs, "; ")
}

// desired is what one AliyunLogConfig asks of the server, defaults filled.
type desired struct {
	Project       string
	Logstore      logstoreSpec
	MachineGroups []string
	ConfigName    string
	// Config is the CreateConfig body (logconfig JSON, defaults applied).
	Config []byte
}

type logstoreSpec struct {
	Name           string
	ShardCount     int
	TTL            int
	HotTTL         int32
	Mode           string
	TelemetryType  string
	AppendMeta     bool
	EnableTracking bool
	AutoSplit      bool
	MaxSplitShard  int
}

// Log Service naming rules (project 3-63, logstore and machine group names).
var (
	projectName  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	logstoreName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$`)
	groupName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$`)
)

// resolve computes the desired server state of obj. Errors are specErrors.
func resolve(obj *v1alpha1.AliyunLogConfig, clusterID string) (*desired, error) {
	s := &obj.Spec
	var errs specErrors
	bad := func(field, format string, args ...any) {
		errs = append(errs, &SpecError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	d := &desired{Project: s.Project}
	if d.Project == "" {
		d.Project = DefaultProject(clusterID)
	}
	if !projectName.MatchString(d.Project) {
		field := "spec.project"
		if s.Project == "" {
			field = "spec.project (default from --cluster-id)"
		}
		bad(field, "%q is not a valid project name: use 3-63 lowercase letters, digits and '-', starting and ending with a letter or digit", d.Project)
	}
	if !logstoreName.MatchString(s.Logstore) {
		bad("spec.logstore", "%q is not a valid logstore name: use 3-63 lowercase letters, digits, '-' and '_', starting and ending with a letter or digit", s.Logstore)
	}
	ls := logstoreSpec{
		Name: s.Logstore, ShardCount: DefaultShardCount, TTL: DefaultLifeCycleDays,
		Mode: s.LogstoreMode, TelemetryType: s.LogstoreTelemetryType,
		AppendMeta: s.LogstoreAppendMeta, EnableTracking: s.LogstoreEnableTracking,
		AutoSplit: true, MaxSplitShard: DefaultMaxSplitShard,
	}
	if s.ShardCount != nil {
		ls.ShardCount = int(*s.ShardCount)
		if ls.ShardCount < 1 || ls.ShardCount > MaxShardCount {
			bad("spec.shardCount", "%d is out of range: use 1 to %d", ls.ShardCount, MaxShardCount)
		}
	}
	if s.LifeCycle != nil {
		ls.TTL = int(*s.LifeCycle)
		if ls.TTL < 1 || ls.TTL > 3650 {
			bad("spec.lifeCycle", "%d days is out of range: use 1 to 3650 (3650 = keep forever)", ls.TTL)
		}
	}
	if s.LogstoreHotTTL != nil {
		ls.HotTTL = *s.LogstoreHotTTL
		if ls.HotTTL < 0 || int(ls.HotTTL) > ls.TTL {
			bad("spec.logstoreHotTTL", "%d days must be between 0 and lifeCycle (%d)", ls.HotTTL, ls.TTL)
		}
	}
	if s.LogstoreAutoSplit != nil {
		ls.AutoSplit = *s.LogstoreAutoSplit
	}
	if s.LogstoreMaxSplitShard != nil {
		ls.MaxSplitShard = int(*s.LogstoreMaxSplitShard)
	}
	switch ls.Mode {
	case "", "standard", "query":
	default:
		bad("spec.logstoreMode", "%q is not a mode: use standard or query", ls.Mode)
	}
	d.Logstore = ls

	groups := append([]string(nil), s.MachineGroups...)
	if s.MachineGroup != "" && !contains(groups, s.MachineGroup) {
		groups = append(groups, s.MachineGroup)
	}
	if len(groups) == 0 {
		groups = []string{DefaultMachineGroup(clusterID)}
	}
	for i, g := range groups {
		if !groupName.MatchString(g) {
			bad(fmt.Sprintf("spec.machineGroups[%d]", i), "%q is not a valid machine group name: use letters, digits, '_', '-' and '.', at most 128 characters", g)
		}
	}
	d.MachineGroups = dedupe(groups)

	cfg, err := buildConfig(obj, d.Project, s.Logstore)
	if err != nil {
		errs = append(errs, err...)
	} else {
		d.ConfigName = cfg.ConfigName
		var err2 error
		if d.Config, err2 = logconfig.Marshal(cfg); err2 != nil {
			bad("spec.logtailConfig", "cannot encode: %v", err2)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return d, nil
}

// buildConfig turns spec.logtailConfig into a Logtail config with SDK
// defaults filled and validated by logconfig, whose key paths are mapped
// back onto the resource's field paths.
func buildConfig(obj *v1alpha1.AliyunLogConfig, project, logstore string) (*logconfig.Config, specErrors) {
	lc := &obj.Spec.LogtailConfig
	name := lc.ConfigName
	if name == "" {
		name = obj.Name
	}
	body := map[string]any{
		"configName": name,
		"inputType":  lc.InputType,
		"outputType": logconfig.OutputTypeLogService,
		"outputDetail": map[string]string{
			"projectName":  project,
			"logstoreName": logstore,
		},
	}
	if lc.LogSample != "" {
		body["logSample"] = lc.LogSample
	}
	if lc.InputDetail != nil && len(lc.InputDetail.Raw) > 0 {
		body["inputDetail"] = json.RawMessage(lc.InputDetail.Raw)
	} else {
		body["inputDetail"] = map[string]any{}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, specErrors{{Field: "spec.logtailConfig", Message: fmt.Sprintf("cannot encode: %v", err)}}
	}
	cfg, err := logconfig.Parse(raw)
	if err == nil {
		cfg.ApplyDefaults()
		err = cfg.Validate()
	}
	if err == nil {
		return cfg, nil
	}
	var errs specErrors
	for _, ve := range logconfig.ValidationErrors(err) {
		errs = append(errs, &SpecError{Field: fieldPath(ve.Path), Message: ve.Message})
	}
	if len(errs) == 0 {
		errs = specErrors{{Field: "spec.logtailConfig", Message: err.Error()}}
	}
	return nil, errs
}

// fieldPath maps a logconfig key path onto the resource.
func fieldPath(p string) string {
	switch {
	case p == "":
		return "spec.logtailConfig"
	case strings.HasPrefix(p, "outputDetail.projectName"):
		return "spec.project"
	case strings.HasPrefix(p, "outputDetail.logstoreName"):
		return "spec.logstore"
	case strings.HasPrefix(p, "outputDetail"), strings.HasPrefix(p, "outputType"):
		return "spec.logtailConfig" // set by the controller; should not happen
	}
	return "spec.logtailConfig." + p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func dedupe(list []string) []string {
	out := list[:0:0]
	for _, v := range list {
		if !contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
