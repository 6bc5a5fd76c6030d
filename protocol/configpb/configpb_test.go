package configpb

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

func fullRequest() HeartbeatRequest {
	return HeartbeatRequest{
		RequestID:    []byte("req-1"),
		SequenceNum:  7,
		Capabilities: AgentAcceptsPipelineConfig,
		InstanceID:   []byte("inst-1"),
		AgentType:    "sluice",
		Attributes: AgentAttributes{Version: "0.1.0", IP: "10.0.0.5", Hostname: "node-a", HostID: "h1",
			Extras: map[string]string{"userDefinedId": "web,edge"}},
		Tags:          []AgentGroupTag{{Name: "env", Value: "prod"}},
		RunningStatus: "ok",
		StartupTime:   1700000000,
		PipelineConfigs: []ConfigInfo{
			{Name: "a", Version: 3, Status: StatusApplied},
			{Name: "b", Version: 4, Status: StatusFailed, Message: "bad regex"},
		},
		InstanceConfigs: []ConfigInfo{{Name: "i", Version: 1}},
		CustomCommands:  []CommandInfo{{Type: "t", Name: "c", Status: StatusApplying, Message: "m"}},
		Flags:           RequestFullState,
		Opaque:          []byte{1, 2},
	}
}

func TestRoundTrip(t *testing.T) {
	req := fullRequest()
	var gotReq HeartbeatRequest
	require.NoError(t, gotReq.Unmarshal(req.Marshal(nil)))
	require.Equal(t, req, gotReq)

	resp := HeartbeatResponse{
		RequestID:             []byte("req-1"),
		CommonResponse:        CommonResponse{Status: 1, ErrorMessage: "nope"},
		Capabilities:          ServerRemembersAttribute | ServerRemembersPipelineConfigStatus,
		PipelineConfigUpdates: []ConfigDetail{{Name: "a", Version: 5, Detail: []byte(`{"configName":"a"}`)}, {Name: "gone", Version: VersionDeleted}},
		InstanceConfigUpdates: []ConfigDetail{{Name: "i", Version: 2, Detail: []byte("{}")}},
		CustomCommandUpdates:  []CommandDetail{{Type: "t", Name: "c", Detail: []byte("x"), ExpireTime: 9}},
		Flags:                 ResponseReportFullState,
		Opaque:                []byte{3},
	}
	var gotResp HeartbeatResponse
	require.NoError(t, gotResp.Unmarshal(resp.Marshal(nil)))
	require.Equal(t, resp, gotResp)

	freq := FetchConfigRequest{RequestID: []byte("r"), InstanceID: []byte("i"), ReqConfigs: []ConfigInfo{{Name: "a", Version: 5}}}
	var gotFreq FetchConfigRequest
	require.NoError(t, gotFreq.Unmarshal(freq.Marshal(nil)))
	require.Equal(t, freq, gotFreq)

	fresp := FetchConfigResponse{RequestID: []byte("r"), ConfigDetails: []ConfigDetail{{Name: "a", Version: 5, Detail: []byte("{}")}}}
	var gotFresp FetchConfigResponse
	require.NoError(t, gotFresp.Unmarshal(fresp.Marshal(nil)))
	require.Equal(t, fresp, gotFresp)
}

// TestWireLayout decodes bytes built field by field with protowire (the
// reference protobuf implementation's wire package) from the upstream
// agentV2.proto numbering, so a mistake in a field number or type here would
// not cancel out in a round trip.
func TestWireLayout(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("rid"))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 42)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("iid"))
	b = protowire.AppendTag(b, 5, protowire.BytesType)
	b = protowire.AppendString(b, "LoongCollector")
	var attrs []byte
	attrs = protowire.AppendTag(attrs, 2, protowire.BytesType)
	attrs = protowire.AppendString(attrs, "192.168.1.9")
	var extra []byte
	extra = protowire.AppendTag(extra, 1, protowire.BytesType)
	extra = protowire.AppendString(extra, "k")
	extra = protowire.AppendTag(extra, 2, protowire.BytesType)
	extra = protowire.AppendString(extra, "v")
	attrs = protowire.AppendTag(attrs, 100, protowire.BytesType)
	attrs = protowire.AppendBytes(attrs, extra)
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	b = protowire.AppendBytes(b, attrs)
	b = protowire.AppendTag(b, 9, protowire.VarintType)
	b = protowire.AppendVarint(b, 1234)
	var ci []byte
	ci = protowire.AppendTag(ci, 1, protowire.BytesType)
	ci = protowire.AppendString(ci, "cfg")
	ci = protowire.AppendTag(ci, 2, protowire.VarintType)
	ci = protowire.AppendVarint(ci, protowire.EncodeZigZag(0)-1) // int64 -1 on the wire: 2^64-1
	ci = protowire.AppendTag(ci, 3, protowire.VarintType)
	ci = protowire.AppendVarint(ci, 3)
	ci = protowire.AppendTag(ci, 4, protowire.BytesType)
	ci = protowire.AppendString(ci, "boom")
	b = protowire.AppendTag(b, 10, protowire.BytesType)
	b = protowire.AppendBytes(b, ci)
	// A field from a newer protocol version is skipped.
	b = protowire.AppendTag(b, 99, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	b = protowire.AppendTag(b, 13, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)

	var r HeartbeatRequest
	require.NoError(t, r.Unmarshal(b))
	require.Equal(t, HeartbeatRequest{
		RequestID: []byte("rid"), SequenceNum: 42, InstanceID: []byte("iid"), AgentType: "LoongCollector",
		Attributes:      AgentAttributes{IP: "192.168.1.9", Extras: map[string]string{"k": "v"}},
		StartupTime:     1234,
		PipelineConfigs: []ConfigInfo{{Name: "cfg", Version: -1, Status: StatusFailed, Message: "boom"}},
		Flags:           RequestFullState,
	}, r)

	// And what we encode reads back field by field with protowire.
	resp := HeartbeatResponse{PipelineConfigUpdates: []ConfigDetail{{Name: "x", Version: 9, Detail: []byte("{}")}}}
	enc := resp.Marshal(nil)
	num, typ, n := protowire.ConsumeTag(enc)
	require.Equal(t, protowire.Number(4), num)
	require.Equal(t, protowire.BytesType, typ)
	inner, m := protowire.ConsumeBytes(enc[n:])
	require.Equal(t, len(enc), n+m)
	num, _, n = protowire.ConsumeTag(inner)
	require.Equal(t, protowire.Number(1), num)
	name, k := protowire.ConsumeString(inner[n:])
	require.Equal(t, "x", name)
	inner = inner[n+k:]
	num, typ, n = protowire.ConsumeTag(inner)
	require.Equal(t, protowire.Number(2), num)
	require.Equal(t, protowire.VarintType, typ)
	v, _ := protowire.ConsumeVarint(inner[n:])
	require.Equal(t, uint64(9), v)
}

func TestGarbage(t *testing.T) {
	var r HeartbeatRequest
	require.Error(t, r.Unmarshal([]byte{0x0a, 0x05, 'a'}))  // truncated bytes
	require.Error(t, r.Unmarshal([]byte{0x52, 0x02, 0x08})) // truncated nested config info
	var resp HeartbeatResponse
	require.Error(t, resp.Unmarshal([]byte{0x10, 0x01})) // commonResponse as a varint
}

func FuzzHeartbeatRequest(f *testing.F) {
	req := fullRequest()
	f.Add(req.Marshal(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r HeartbeatRequest
		if err := r.Unmarshal(data); err != nil {
			return
		}
		var again HeartbeatRequest
		require.NoError(t, again.Unmarshal(r.Marshal(nil)))
	})
}

func FuzzHeartbeatResponse(f *testing.F) {
	resp := HeartbeatResponse{PipelineConfigUpdates: []ConfigDetail{{Name: "a", Version: 1, Detail: []byte("{}")}}}
	f.Add(resp.Marshal(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r HeartbeatResponse
		if err := r.Unmarshal(data); err != nil {
			return
		}
		var again HeartbeatResponse
		require.NoError(t, again.Unmarshal(r.Marshal(nil)))
		require.Equal(t, len(r.PipelineConfigUpdates), len(again.PipelineConfigUpdates))
	})
}

func FuzzFetchConfig(f *testing.F) {
	req := FetchConfigRequest{InstanceID: []byte("i"), ReqConfigs: []ConfigInfo{{Name: "a", Version: 1}}}
	f.Add(req.Marshal(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r FetchConfigRequest
		_ = r.Unmarshal(data)
		var s FetchConfigResponse
		_ = s.Unmarshal(data)
	})
}
