package v1alpha1

// Hand-written deep copies: five small types do not justify a code generator
// in the build; TestDeepCopyIndependent checks every field is copied.

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// DeepCopyInto copies in into out.
func (in *AliyunLogConfig) DeepCopyInto(out *AliyunLogConfig) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
	in.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a deep copy.
func (in *AliyunLogConfig) DeepCopy() *AliyunLogConfig {
	if in == nil {
		return nil
	}
	out := new(AliyunLogConfig)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AliyunLogConfig) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *AliyunLogConfigList) DeepCopyInto(out *AliyunLogConfigList) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]AliyunLogConfig, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a deep copy.
func (in *AliyunLogConfigList) DeepCopy() *AliyunLogConfigList {
	if in == nil {
		return nil
	}
	out := new(AliyunLogConfigList)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AliyunLogConfigList) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *AliyunLogConfigSpec) DeepCopyInto(out *AliyunLogConfigSpec) {
	*out = *in
	out.ShardCount = copyPtr(in.ShardCount)
	out.LifeCycle = copyPtr(in.LifeCycle)
	out.LogstoreHotTTL = copyPtr(in.LogstoreHotTTL)
	out.LogstoreAutoSplit = copyPtr(in.LogstoreAutoSplit)
	out.LogstoreMaxSplitShard = copyPtr(in.LogstoreMaxSplitShard)
	if in.MachineGroups != nil {
		out.MachineGroups = append([]string(nil), in.MachineGroups...)
	}
	if in.ConfigTags != nil {
		out.ConfigTags = make(map[string]string, len(in.ConfigTags))
		for k, v := range in.ConfigTags {
			out.ConfigTags[k] = v
		}
	}
	in.LogtailConfig.DeepCopyInto(&out.LogtailConfig)
}

// DeepCopyInto copies in into out.
func (in *LogtailConfig) DeepCopyInto(out *LogtailConfig) {
	*out = *in
	if in.InputDetail != nil {
		out.InputDetail = in.InputDetail.DeepCopy()
	}
}

// DeepCopyInto copies in into out.
func (in *AliyunLogConfigStatus) DeepCopyInto(out *AliyunLogConfigStatus) {
	*out = *in
	if in.MachineGroups != nil {
		out.MachineGroups = append([]string(nil), in.MachineGroups...)
	}
	if in.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(in.Conditions))
		for i := range in.Conditions {
			in.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
