// Package configpb is the wire format of LoongCollector's ConfigServer
// v2 protocol (package configserver.proto.v2, docs/log-service-api.md §8), spoken between
// sluice-agent and sluice-server and understood by LoongCollector agents:
// POST /Agent/Heartbeat (HeartbeatRequest → HeartbeatResponse) and
// POST /Agent/FetchPipelineConfig (FetchConfigRequest → FetchConfigResponse),
// protobuf bodies.
//
// The messages are encoded with github.com/VictoriaMetrics/easyproto rather
// than generated code: they are small, exchanged every few seconds, and the
// repository has no protoc step. Decoded strings and byte slices are copies,
// so a decoded message may outlive its buffer. Unknown fields are skipped,
// as protobuf requires.
package configpb

import (
	"fmt"
	"strings"

	"github.com/VictoriaMetrics/easyproto"
)

// HTTP paths of the protocol.
const (
	PathHeartbeat           = "/Agent/Heartbeat"
	PathFetchPipelineConfig = "/Agent/FetchPipelineConfig"
	PathFetchInstanceConfig = "/Agent/FetchInstanceConfig"
	// ContentType is sent with every request and response body.
	ContentType = "application/x-protobuf"
)

// ConfigStatus is a config's state on the agent.
type ConfigStatus int32

// Config states (enum ConfigStatus).
const (
	StatusUnset    ConfigStatus = 0
	StatusApplying ConfigStatus = 1
	StatusApplied  ConfigStatus = 2
	StatusFailed   ConfigStatus = 3
)

func (s ConfigStatus) String() string {
	switch s {
	case StatusUnset:
		return "UNSET"
	case StatusApplying:
		return "APPLYING"
	case StatusApplied:
		return "APPLIED"
	case StatusFailed:
		return "FAILED"
	}
	return fmt.Sprintf("ConfigStatus(%d)", int32(s))
}

// Agent capabilities (HeartbeatRequest.Capabilities bits).
const (
	AgentAcceptsPipelineConfig uint64 = 1
	AgentAcceptsInstanceConfig uint64 = 2
	AgentAcceptsCustomCommand  uint64 = 4
)

// Server capabilities (HeartbeatResponse.Capabilities bits).
const (
	ServerRemembersAttribute            uint64 = 1
	ServerRemembersPipelineConfigStatus uint64 = 2
	ServerRemembersInstanceConfigStatus uint64 = 4
)

// Request flags.
const (
	// RequestFullState: the request lists every config the agent holds.
	RequestFullState uint64 = 1
)

// Response flags.
const (
	// ResponseReportFullState asks the agent to send its full state next time
	// (the server lost track, e.g. after a restart or a skipped sequence).
	ResponseReportFullState uint64 = 1
	// ResponseFetchPipelineConfigDetail: the updates carry no detail; fetch
	// it with /Agent/FetchPipelineConfig.
	ResponseFetchPipelineConfigDetail uint64 = 2
	ResponseFetchInstanceConfigDetail uint64 = 4
)

// VersionDeleted in a ConfigDetail tells the agent to remove the config.
const VersionDeleted int64 = -1

// AgentGroupTag is one agent tag (used by servers to select agent groups).
type AgentGroupTag struct {
	Name  string
	Value string
}

// ConfigInfo is what the agent reports about one config it holds.
type ConfigInfo struct {
	Name    string
	Version int64
	Status  ConfigStatus
	Message string
}

// CommandInfo reports one custom command (kept for completeness).
type CommandInfo struct {
	Type    string
	Name    string
	Status  ConfigStatus
	Message string
}

// AgentAttributes are the agent's basic attributes.
type AgentAttributes struct {
	Version  string
	IP       string
	Hostname string
	HostID   string
	Extras   map[string]string
}

// HeartbeatRequest is sent by the agent every heartbeat interval.
type HeartbeatRequest struct {
	RequestID       []byte
	SequenceNum     uint64
	Capabilities    uint64
	InstanceID      []byte
	AgentType       string
	Attributes      AgentAttributes
	Tags            []AgentGroupTag
	RunningStatus   string
	StartupTime     int64
	PipelineConfigs []ConfigInfo
	InstanceConfigs []ConfigInfo
	CustomCommands  []CommandInfo
	Flags           uint64
	Opaque          []byte
}

// ConfigDetail is one config sent by the server: Version VersionDeleted
// means remove it; Detail is the config body (empty when the agent must
// fetch it).
type ConfigDetail struct {
	Name    string
	Version int64
	Detail  []byte
}

// CommandDetail is one custom command (kept for completeness).
type CommandDetail struct {
	Type       string
	Name       string
	Detail     []byte
	ExpireTime int64
}

// CommonResponse carries the server's verdict; Status 0 is success.
type CommonResponse struct {
	Status       int32
	ErrorMessage string
}

// HeartbeatResponse is the server's answer to a heartbeat.
type HeartbeatResponse struct {
	RequestID             []byte
	CommonResponse        CommonResponse
	Capabilities          uint64
	PipelineConfigUpdates []ConfigDetail
	InstanceConfigUpdates []ConfigDetail
	CustomCommandUpdates  []CommandDetail
	Flags                 uint64
	Opaque                []byte
}

// FetchConfigRequest asks for the detail of configs by name and version.
type FetchConfigRequest struct {
	RequestID  []byte
	InstanceID []byte
	ReqConfigs []ConfigInfo
}

// FetchConfigResponse returns config details.
type FetchConfigResponse struct {
	RequestID      []byte
	CommonResponse CommonResponse
	ConfigDetails  []ConfigDetail
}

var mp easyproto.MarshalerPool

func marshal(dst []byte, fill func(mm *easyproto.MessageMarshaler)) []byte {
	m := mp.Get()
	fill(m.MessageMarshaler())
	dst = m.Marshal(dst)
	mp.Put(m)
	return dst
}

func appendBytes(mm *easyproto.MessageMarshaler, n uint32, b []byte) {
	if len(b) > 0 {
		mm.AppendBytes(n, b)
	}
}

func appendString(mm *easyproto.MessageMarshaler, n uint32, s string) {
	if s != "" {
		mm.AppendString(n, s)
	}
}

func appendUint64(mm *easyproto.MessageMarshaler, n uint32, v uint64) {
	if v != 0 {
		mm.AppendUint64(n, v)
	}
}

func appendInt64(mm *easyproto.MessageMarshaler, n uint32, v int64) {
	if v != 0 {
		mm.AppendInt64(n, v)
	}
}

func appendConfigInfos(mm *easyproto.MessageMarshaler, n uint32, cs []ConfigInfo) {
	for _, c := range cs {
		m := mm.AppendMessage(n)
		appendString(m, 1, c.Name)
		appendInt64(m, 2, c.Version)
		if c.Status != 0 {
			m.AppendInt32(3, int32(c.Status))
		}
		appendString(m, 4, c.Message)
	}
}

func appendConfigDetails(mm *easyproto.MessageMarshaler, n uint32, cs []ConfigDetail) {
	for _, c := range cs {
		m := mm.AppendMessage(n)
		appendString(m, 1, c.Name)
		appendInt64(m, 2, c.Version)
		appendBytes(m, 3, c.Detail)
	}
}

func appendCommon(mm *easyproto.MessageMarshaler, n uint32, c CommonResponse) {
	if c == (CommonResponse{}) {
		return
	}
	m := mm.AppendMessage(n)
	if c.Status != 0 {
		m.AppendInt32(1, c.Status)
	}
	appendString(m, 2, c.ErrorMessage)
}

// Marshal appends the encoded request to dst.
func (r *HeartbeatRequest) Marshal(dst []byte) []byte {
	return marshal(dst, func(mm *easyproto.MessageMarshaler) {
		appendBytes(mm, 1, r.RequestID)
		appendUint64(mm, 2, r.SequenceNum)
		appendUint64(mm, 3, r.Capabilities)
		appendBytes(mm, 4, r.InstanceID)
		appendString(mm, 5, r.AgentType)
		if a := &r.Attributes; a.Version != "" || a.IP != "" || a.Hostname != "" || a.HostID != "" || len(a.Extras) > 0 {
			m := mm.AppendMessage(6)
			appendString(m, 1, a.Version)
			appendString(m, 2, a.IP)
			appendString(m, 3, a.Hostname)
			appendString(m, 4, a.HostID)
			for k, v := range a.Extras {
				e := m.AppendMessage(100)
				e.AppendString(1, k)
				e.AppendString(2, v)
			}
		}
		for _, t := range r.Tags {
			m := mm.AppendMessage(7)
			appendString(m, 1, t.Name)
			appendString(m, 2, t.Value)
		}
		appendString(mm, 8, r.RunningStatus)
		appendInt64(mm, 9, r.StartupTime)
		appendConfigInfos(mm, 10, r.PipelineConfigs)
		appendConfigInfos(mm, 11, r.InstanceConfigs)
		for _, c := range r.CustomCommands {
			m := mm.AppendMessage(12)
			appendString(m, 1, c.Type)
			appendString(m, 2, c.Name)
			if c.Status != 0 {
				m.AppendInt32(3, int32(c.Status))
			}
			appendString(m, 4, c.Message)
		}
		appendUint64(mm, 13, r.Flags)
		appendBytes(mm, 14, r.Opaque)
	})
}

// Marshal appends the encoded response to dst.
func (r *HeartbeatResponse) Marshal(dst []byte) []byte {
	return marshal(dst, func(mm *easyproto.MessageMarshaler) {
		appendBytes(mm, 1, r.RequestID)
		appendCommon(mm, 2, r.CommonResponse)
		appendUint64(mm, 3, r.Capabilities)
		appendConfigDetails(mm, 4, r.PipelineConfigUpdates)
		appendConfigDetails(mm, 5, r.InstanceConfigUpdates)
		for _, c := range r.CustomCommandUpdates {
			m := mm.AppendMessage(6)
			appendString(m, 1, c.Type)
			appendString(m, 2, c.Name)
			appendBytes(m, 3, c.Detail)
			appendInt64(m, 4, c.ExpireTime)
		}
		appendUint64(mm, 7, r.Flags)
		appendBytes(mm, 8, r.Opaque)
	})
}

// Marshal appends the encoded request to dst.
func (r *FetchConfigRequest) Marshal(dst []byte) []byte {
	return marshal(dst, func(mm *easyproto.MessageMarshaler) {
		appendBytes(mm, 1, r.RequestID)
		appendBytes(mm, 2, r.InstanceID)
		appendConfigInfos(mm, 3, r.ReqConfigs)
	})
}

// Marshal appends the encoded response to dst.
func (r *FetchConfigResponse) Marshal(dst []byte) []byte {
	return marshal(dst, func(mm *easyproto.MessageMarshaler) {
		appendBytes(mm, 1, r.RequestID)
		appendCommon(mm, 2, r.CommonResponse)
		appendConfigDetails(mm, 3, r.ConfigDetails)
	})
}

// decoder walks the fields of one message, keeping the first error.
type decoder struct {
	msg string
	err error
}

func (d *decoder) fail(fc *easyproto.FieldContext, what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: field %d: cannot read %s", d.msg, fc.FieldNum, what)
	}
}

func (d *decoder) each(src []byte, fn func(fc *easyproto.FieldContext)) error {
	var fc easyproto.FieldContext
	for len(src) > 0 && d.err == nil {
		var err error
		src, err = fc.NextField(src)
		if err != nil {
			return fmt.Errorf("%s: %w", d.msg, err)
		}
		fn(&fc)
	}
	return d.err
}

func (d *decoder) str(fc *easyproto.FieldContext) string {
	s, ok := fc.String()
	if !ok {
		d.fail(fc, "string")
	}
	return strings.Clone(s)
}

func (d *decoder) bytes(fc *easyproto.FieldContext) []byte {
	b, ok := fc.Bytes()
	if !ok {
		d.fail(fc, "bytes")
	}
	return append([]byte(nil), b...)
}

func (d *decoder) u64(fc *easyproto.FieldContext) uint64 {
	v, ok := fc.Uint64()
	if !ok {
		d.fail(fc, "uint64")
	}
	return v
}

func (d *decoder) i64(fc *easyproto.FieldContext) int64 {
	v, ok := fc.Int64()
	if !ok {
		d.fail(fc, "int64")
	}
	return v
}

func (d *decoder) i32(fc *easyproto.FieldContext) int32 {
	v, ok := fc.Int32()
	if !ok {
		d.fail(fc, "int32")
	}
	return v
}

func (d *decoder) sub(fc *easyproto.FieldContext, name string, fn func(fc *easyproto.FieldContext)) {
	data, ok := fc.MessageData()
	if !ok {
		d.fail(fc, name)
		return
	}
	sd := &decoder{msg: d.msg + "." + name}
	if err := sd.each(data, fn); err != nil && d.err == nil {
		d.err = err
	}
}

func (d *decoder) configInfo(fc *easyproto.FieldContext, name string) ConfigInfo {
	var c ConfigInfo
	d.sub(fc, name, func(f *easyproto.FieldContext) {
		switch f.FieldNum {
		case 1:
			c.Name = d.str(f)
		case 2:
			c.Version = d.i64(f)
		case 3:
			c.Status = ConfigStatus(d.i32(f))
		case 4:
			c.Message = d.str(f)
		}
	})
	return c
}

func (d *decoder) configDetail(fc *easyproto.FieldContext, name string) ConfigDetail {
	var c ConfigDetail
	d.sub(fc, name, func(f *easyproto.FieldContext) {
		switch f.FieldNum {
		case 1:
			c.Name = d.str(f)
		case 2:
			c.Version = d.i64(f)
		case 3:
			c.Detail = d.bytes(f)
		}
	})
	return c
}

func (d *decoder) common(fc *easyproto.FieldContext) CommonResponse {
	var c CommonResponse
	d.sub(fc, "commonResponse", func(f *easyproto.FieldContext) {
		switch f.FieldNum {
		case 1:
			c.Status = d.i32(f)
		case 2:
			c.ErrorMessage = d.str(f)
		}
	})
	return c
}

// Unmarshal decodes src into r (replacing its content).
func (r *HeartbeatRequest) Unmarshal(src []byte) error {
	*r = HeartbeatRequest{}
	d := &decoder{msg: "HeartbeatRequest"}
	return d.each(src, func(fc *easyproto.FieldContext) {
		switch fc.FieldNum {
		case 1:
			r.RequestID = d.bytes(fc)
		case 2:
			r.SequenceNum = d.u64(fc)
		case 3:
			r.Capabilities = d.u64(fc)
		case 4:
			r.InstanceID = d.bytes(fc)
		case 5:
			r.AgentType = d.str(fc)
		case 6:
			a := &r.Attributes
			d.sub(fc, "attributes", func(f *easyproto.FieldContext) {
				switch f.FieldNum {
				case 1:
					a.Version = d.str(f)
				case 2:
					a.IP = d.str(f)
				case 3:
					a.Hostname = d.str(f)
				case 4:
					a.HostID = d.str(f)
				case 100:
					var k, v string
					d.sub(f, "extras", func(e *easyproto.FieldContext) {
						switch e.FieldNum {
						case 1:
							k = d.str(e)
						case 2:
							v = d.str(e)
						}
					})
					if a.Extras == nil {
						a.Extras = map[string]string{}
					}
					a.Extras[k] = v
				}
			})
		case 7:
			var t AgentGroupTag
			d.sub(fc, "tags", func(f *easyproto.FieldContext) {
				switch f.FieldNum {
				case 1:
					t.Name = d.str(f)
				case 2:
					t.Value = d.str(f)
				}
			})
			r.Tags = append(r.Tags, t)
		case 8:
			r.RunningStatus = d.str(fc)
		case 9:
			r.StartupTime = d.i64(fc)
		case 10:
			r.PipelineConfigs = append(r.PipelineConfigs, d.configInfo(fc, "pipeline_configs"))
		case 11:
			r.InstanceConfigs = append(r.InstanceConfigs, d.configInfo(fc, "instance_configs"))
		case 12:
			var c CommandInfo
			d.sub(fc, "custom_commands", func(f *easyproto.FieldContext) {
				switch f.FieldNum {
				case 1:
					c.Type = d.str(f)
				case 2:
					c.Name = d.str(f)
				case 3:
					c.Status = ConfigStatus(d.i32(f))
				case 4:
					c.Message = d.str(f)
				}
			})
			r.CustomCommands = append(r.CustomCommands, c)
		case 13:
			r.Flags = d.u64(fc)
		case 14:
			r.Opaque = d.bytes(fc)
		}
	})
}

// Unmarshal decodes src into r (replacing its content).
func (r *HeartbeatResponse) Unmarshal(src []byte) error {
	*r = HeartbeatResponse{}
	d := &decoder{msg: "HeartbeatResponse"}
	return d.each(src, func(fc *easyproto.FieldContext) {
		switch fc.FieldNum {
		case 1:
			r.RequestID = d.bytes(fc)
		case 2:
			r.CommonResponse = d.common(fc)
		case 3:
			r.Capabilities = d.u64(fc)
		case 4:
			r.PipelineConfigUpdates = append(r.PipelineConfigUpdates, d.configDetail(fc, "pipeline_config_updates"))
		case 5:
			r.InstanceConfigUpdates = append(r.InstanceConfigUpdates, d.configDetail(fc, "instance_config_updates"))
		case 6:
			var c CommandDetail
			d.sub(fc, "custom_command_updates", func(f *easyproto.FieldContext) {
				switch f.FieldNum {
				case 1:
					c.Type = d.str(f)
				case 2:
					c.Name = d.str(f)
				case 3:
					c.Detail = d.bytes(f)
				case 4:
					c.ExpireTime = d.i64(f)
				}
			})
			r.CustomCommandUpdates = append(r.CustomCommandUpdates, c)
		case 7:
			r.Flags = d.u64(fc)
		case 8:
			r.Opaque = d.bytes(fc)
		}
	})
}

// Unmarshal decodes src into r (replacing its content).
func (r *FetchConfigRequest) Unmarshal(src []byte) error {
	*r = FetchConfigRequest{}
	d := &decoder{msg: "FetchConfigRequest"}
	return d.each(src, func(fc *easyproto.FieldContext) {
		switch fc.FieldNum {
		case 1:
			r.RequestID = d.bytes(fc)
		case 2:
			r.InstanceID = d.bytes(fc)
		case 3:
			r.ReqConfigs = append(r.ReqConfigs, d.configInfo(fc, "req_configs"))
		}
	})
}

// Unmarshal decodes src into r (replacing its content).
func (r *FetchConfigResponse) Unmarshal(src []byte) error {
	*r = FetchConfigResponse{}
	d := &decoder{msg: "FetchConfigResponse"}
	return d.each(src, func(fc *easyproto.FieldContext) {
		switch fc.FieldNum {
		case 1:
			r.RequestID = d.bytes(fc)
		case 2:
			r.CommonResponse = d.common(fc)
		case 3:
			r.ConfigDetails = append(r.ConfigDetails, d.configDetail(fc, "config_details"))
		}
	})
}
