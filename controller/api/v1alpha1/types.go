// Package v1alpha1 is the AliyunLogConfig API (log.alibabacloud.com/v1alpha1)
// as Logtail users already write it: the same group, kind and spec keys, so
// existing manifests apply unchanged. The CRD manifest is
// deploy/crds/log.alibabacloud.com_aliyunlogconfigs.yaml (hand-written; the
// tests check it against these types and apply it to a real API server).
package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and version of the API.
const (
	Group   = "log.alibabacloud.com"
	Version = "v1alpha1"
	Kind    = "AliyunLogConfig"
	// Resource is the plural resource name.
	Resource = "aliyunlogconfigs"
)

// GroupVersion is log.alibabacloud.com/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// AddToScheme registers the API types with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &AliyunLogConfig{}, &AliyunLogConfigList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// AliyunLogConfig asks for one Logtail collection config, the logstore it
// writes to and the machine groups it applies to.
type AliyunLogConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AliyunLogConfigSpec   `json:"spec,omitempty"`
	Status AliyunLogConfigStatus `json:"status,omitempty"`
}

// AliyunLogConfigList is a list of AliyunLogConfig.
type AliyunLogConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AliyunLogConfig `json:"items"`
}

// AliyunLogConfigSpec is the spec as the Logtail CRD defines it.
type AliyunLogConfigSpec struct {
	// Project; empty = the controller's default (k8s-log-<cluster-id>).
	Project string `json:"project,omitempty"`
	// Logstore the config writes to; created when missing.
	Logstore string `json:"logstore"`
	// ShardCount of a new logstore (default 2, at most 10).
	ShardCount *int32 `json:"shardCount,omitempty"`
	// LifeCycle is the data retention of a new logstore in days (default
	// 90; 3650 = keep forever).
	LifeCycle *int32 `json:"lifeCycle,omitempty"`
	// LogstoreHotTTL is the hot-storage retention in days.
	LogstoreHotTTL *int32 `json:"logstoreHotTTL,omitempty"`
	// LogstoreMode is standard or query.
	LogstoreMode           string `json:"logstoreMode,omitempty"`
	LogstoreTelemetryType  string `json:"logstoreTelemetryType,omitempty"`
	LogstoreAppendMeta     bool   `json:"logstoreAppendMeta,omitempty"`
	LogstoreEnableTracking bool   `json:"logstoreEnableTracking,omitempty"`
	LogstoreAutoSplit      *bool  `json:"logstoreAutoSplit,omitempty"`
	// LogstoreMaxSplitShard bounds automatic splitting (default 32).
	LogstoreMaxSplitShard *int32 `json:"logstoreMaxSplitShard,omitempty"`
	// MachineGroups the config applies to; empty = the controller's default
	// group (k8s-group-<cluster-id>). Each group identifies its agents by
	// user-defined id equal to the group name.
	MachineGroups []string `json:"machineGroups,omitempty"`
	// MachineGroup is the single-group spelling of older manifests; it is
	// added to MachineGroups.
	MachineGroup string `json:"machineGroup,omitempty"`
	// ConfigTags are accepted for compatibility; Sluice's server has no
	// config tags yet, so they stay on the resource.
	ConfigTags map[string]string `json:"configTags,omitempty"`
	// Endpoint, UID and ProductCode select another account or region
	// upstream; a Sluice controller serves one server, so they are
	// accepted (existing manifests keep applying) and ignored.
	Endpoint    string `json:"endpoint,omitempty"`
	UID         string `json:"uid,omitempty"`
	ProductCode string `json:"productCode,omitempty"`

	LogtailConfig LogtailConfig `json:"logtailConfig"`
}

// LogtailConfig is the collection config (CreateConfig body without output).
type LogtailConfig struct {
	// ConfigName; empty = metadata.name.
	ConfigName string `json:"configName,omitempty"`
	// InputType is file or plugin; empty = inferred from inputDetail.
	InputType string `json:"inputType,omitempty"`
	// InputDetail is the Logtail inputDetail object, kept verbatim (unknown
	// keys included) and validated by the controller.
	InputDetail *apiextensionsv1.JSON `json:"inputDetail,omitempty"`
	LogSample   string                `json:"logSample,omitempty"`
}

// Status values, as the Logtail controller reports them.
const (
	StatusOK    = "OK"
	StatusError = "ERROR"
)

// AliyunLogConfigStatus reports the last reconcile.
type AliyunLogConfigStatus struct {
	// Status is OK once everything is applied, ERROR otherwise.
	Status string `json:"status,omitempty"`
	// StatusCode is 200 when applied, 400 for a bad spec, else the server's
	// HTTP status (or 0 when it could not be reached).
	StatusCode int32 `json:"statusCode,omitempty"`
	// Message names the failing field or server error and the fix.
	Message string `json:"message,omitempty"`
	// ObservedGeneration is the generation last applied successfully.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Project, Logstore, ConfigName and MachineGroups as resolved (defaults
	// filled) — what the finalizer cleans up.
	Project       string   `json:"project,omitempty"`
	Logstore      string   `json:"logstore,omitempty"`
	ConfigName    string   `json:"configName,omitempty"`
	MachineGroups []string `json:"machineGroups,omitempty"`
	// Conditions: Ready (summary) and Synced (server state matches spec).
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
