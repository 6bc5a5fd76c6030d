package protocol_test

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
)

// The SDK's proto.Marshal and our encoder must produce the same bytes, and
// each must decode what the other wrote.
func TestLogGroupMatchesSDK(t *testing.T) {
	groups := []*protocol.LogGroup{
		{},
		{Topic: "t"},
		{Logs: []protocol.Log{{Time: 0}}},
		{Logs: []protocol.Log{{Time: 1, Contents: []protocol.LogContent{{Key: "", Value: ""}}}}},
		protocoltest.NginxLogGroup(4 << 10),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		groups = append(groups, protocoltest.RandomLogGroup(r))
	}
	var dec protocol.LogGroup
	for i, g := range groups {
		want, err := proto.Marshal(protocoltest.ToSDK(g))
		require.NoError(t, err)

		got := protocol.AppendLogGroup(nil, g)
		require.Equal(t, hex.EncodeToString(want), hex.EncodeToString(got), "group %d", i)
		require.Equal(t, len(got), protocol.LogGroupSize(g), "group %d size", i)

		// SDK bytes → our decoder.
		require.NoError(t, dec.Unmarshal(want), "group %d", i)
		require.Equal(t, protocoltest.Normalize(g), protocoltest.Normalize(&dec), "group %d", i)

		// Our bytes → SDK decoder.
		var s sls.LogGroup
		require.NoError(t, proto.Unmarshal(got, &s), "group %d", i)
		require.Equal(t, protocoltest.Normalize(g), protocoltest.Normalize(protocoltest.FromSDK(&s)), "group %d", i)
	}
}

func TestLogGroupListMatchesSDK(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var gl protocol.LogGroupList
	var sl sls.LogGroupList
	for range 20 {
		gl.LogGroups = append(gl.LogGroups, *protocoltest.RandomLogGroup(r))
		sl.LogGroups = append(sl.LogGroups, protocoltest.ToSDK(&gl.LogGroups[len(gl.LogGroups)-1]))
	}
	want, err := proto.Marshal(&sl)
	require.NoError(t, err)
	got := protocol.AppendLogGroupList(nil, &gl)
	require.Equal(t, want, got)
	require.Len(t, got, protocol.LogGroupListSize(&gl))

	var dec protocol.LogGroupList
	require.NoError(t, dec.Unmarshal(want))
	require.Len(t, dec.LogGroups, len(gl.LogGroups))
	for i := range gl.LogGroups {
		require.Equal(t, protocoltest.Normalize(&gl.LogGroups[i]), protocoltest.Normalize(&dec.LogGroups[i]))
	}
}

func TestSlsLogPackageListMatchesSDK(t *testing.T) {
	sdk := &sls.SlsLogPackageList{Packages: []*sls.SlsLogPackage{
		{Data: []byte("abc"), UncompressSize: proto.Int32(100)},
		{Data: []byte{}},
		{Data: make([]byte, 300), UncompressSize: proto.Int32(-1)}, // negative: 10-byte varint
	}}
	want, err := proto.Marshal(sdk)
	require.NoError(t, err)

	var pl protocol.SlsLogPackageList
	require.NoError(t, pl.Unmarshal(want))
	require.Len(t, pl.Packages, 3)
	require.Equal(t, []byte("abc"), pl.Packages[0].Data)
	require.True(t, pl.Packages[0].HasUncompressSize)
	require.EqualValues(t, 100, pl.Packages[0].UncompressSize)
	require.False(t, pl.Packages[0].HasCompressType)
	require.Equal(t, protocol.CompressLZ4, pl.Packages[0].Compression(protocol.CompressLZ4))
	require.Empty(t, pl.Packages[1].Data)
	require.False(t, pl.Packages[1].HasUncompressSize)
	require.EqualValues(t, -1, pl.Packages[2].UncompressSize)

	require.Equal(t, want, protocol.AppendSlsLogPackageList(nil, &pl))

	// LoongCollector's compress_type (field 3) round-trips and the SDK,
	// which does not know it, still decodes the package.
	pl.Packages[0].CompressType, pl.Packages[0].HasCompressType = protocol.CompressZstd, true
	b := protocol.AppendSlsLogPackageList(nil, &pl)
	var again protocol.SlsLogPackageList
	require.NoError(t, again.Unmarshal(b))
	require.Equal(t, protocol.CompressZstd, again.Packages[0].Compression(protocol.CompressLZ4))
	var s sls.SlsLogPackageList
	require.NoError(t, proto.Unmarshal(b, &s))
	require.Equal(t, []byte("abc"), s.Packages[0].Data)
}

// LoongCollector's `repeated string values = 3` must decode (not fail) and
// survive a re-encode; the SDK sees it as an unknown field.
func TestLogValuesExtension(t *testing.T) {
	g := &protocol.LogGroup{Logs: []protocol.Log{{
		Time:     1700000000,
		Contents: []protocol.LogContent{{Key: "k", Value: "v"}},
		Values:   []string{"a", "", "ccc"},
		TimeNs:   5, HasTimeNs: true,
	}}}
	b := protocol.AppendLogGroup(nil, g)
	require.Len(t, b, protocol.LogGroupSize(g))
	var dec protocol.LogGroup
	require.NoError(t, dec.Unmarshal(b))
	require.Equal(t, protocoltest.Normalize(g), protocoltest.Normalize(&dec))

	var s sls.LogGroup
	require.NoError(t, proto.Unmarshal(b, &s))
	require.Equal(t, "v", s.Logs[0].Contents[0].GetValue())
	require.EqualValues(t, 5, s.Logs[0].GetTimeNs())
}

// Encoding log by log plus meta must equal encoding the whole group, and
// the generic KV encoders must equal the typed ones.
func TestIncrementalEncoding(t *testing.T) {
	g := protocoltest.NginxLogGroup(8 << 10)
	want := protocol.AppendLogGroup(nil, g)

	type field struct{ Key, Value string } // like the agent's pipeline.Field
	var got []byte
	for i := range g.Logs {
		l := &g.Logs[i]
		fields := make([]field, len(l.Contents))
		for j, c := range l.Contents {
			fields[j] = field(c)
		}
		before := len(got)
		got = protocol.AppendLogKV(got, l.Time, l.TimeNs, l.HasTimeNs, fields)
		require.Equal(t, protocol.LogKVSize(l.Time, l.HasTimeNs, fields), len(got)-before)
		require.Equal(t, protocol.LogSize(l), len(got)-before)
	}
	tags := make([]field, len(g.LogTags))
	for i, tg := range g.LogTags {
		tags[i] = field(tg)
	}
	got = protocol.AppendLogGroupMetaKV(got, g.Category, g.Topic, g.Source, g.MachineUUID, tags)
	require.Equal(t, want, got)

	// Appending keeps what dst already held.
	prefix := []byte("prefix")
	require.Equal(t, append([]byte("prefix"), want...), protocol.AppendLogGroup(prefix, g))
}

func TestDecodeReusesAndAliases(t *testing.T) {
	big := protocol.AppendLogGroup(nil, protocoltest.NginxLogGroup(64<<10))
	small := protocol.AppendLogGroup(nil, &protocol.LogGroup{
		Topic: "small",
		Logs:  []protocol.Log{{Time: 7, Contents: []protocol.LogContent{{Key: "only", Value: "one"}}}},
	})
	var g protocol.LogGroup
	require.NoError(t, g.Unmarshal(big))
	require.NoError(t, g.Unmarshal(small))
	// Nothing from the bigger previous message leaks into the result.
	require.Equal(t, "small", g.Topic)
	require.Empty(t, g.Source)
	require.Empty(t, g.LogTags)
	require.Len(t, g.Logs, 1)
	require.Equal(t, []protocol.LogContent{{Key: "only", Value: "one"}}, g.Logs[0].Contents)
	require.False(t, g.Logs[0].HasTimeNs)

	// Strings alias the input; Clone detaches them.
	c := g.Clone()
	for i := range small {
		small[i] = 'X'
	}
	require.NotEqual(t, "small", g.Topic, "decoded strings alias the input buffer")
	require.Equal(t, "small", c.Topic)
	require.Equal(t, []protocol.LogContent{{Key: "only", Value: "one"}}, c.Logs[0].Contents)
}

func TestClone(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		g := protocoltest.RandomLogGroup(r)
		require.Equal(t, protocoltest.Normalize(g), protocoltest.Normalize(g.Clone()))
	}
}

// Steady-state decoding and encoding allocate nothing.
func TestZeroAllocs(t *testing.T) {
	g := protocoltest.NginxLogGroup(64 << 10)
	body := protocol.AppendLogGroup(nil, g)
	list := protocol.AppendLogGroupList(nil, &protocol.LogGroupList{LogGroups: []protocol.LogGroup{*g, *g}})
	var dec protocol.LogGroup
	var decList protocol.LogGroupList
	buf := make([]byte, 0, len(list))
	require.NoError(t, dec.Unmarshal(body))
	require.NoError(t, decList.Unmarshal(list))

	require.Zero(t, testing.AllocsPerRun(20, func() {
		if err := dec.Unmarshal(body); err != nil {
			t.Fatal(err)
		}
	}), "LogGroup.Unmarshal")
	require.Zero(t, testing.AllocsPerRun(20, func() {
		if err := decList.Unmarshal(list); err != nil {
			t.Fatal(err)
		}
	}), "LogGroupList.Unmarshal")
	require.Zero(t, testing.AllocsPerRun(20, func() {
		buf = protocol.AppendLogGroup(buf[:0], g)
	}), "AppendLogGroup")
	require.Zero(t, testing.AllocsPerRun(20, func() {
		buf = protocol.AppendLogGroupList(buf[:0], &decList)
	}), "AppendLogGroupList")
}

func TestDecodeMalformed(t *testing.T) {
	valid := protocol.AppendLogGroup(nil, &protocol.LogGroup{
		Topic: "t",
		Logs:  []protocol.Log{{Time: 1, Contents: []protocol.LogContent{{Key: "k", Value: "v"}}}},
	})
	cases := []struct {
		name  string
		in    []byte
		cause error
		msg   string
	}{
		{"truncated everywhere", valid[:len(valid)-1], protocol.ErrTruncated, "truncated"},
		{"log length past end", []byte{0x0a, 0x05, 0x08, 0x01}, protocol.ErrTruncated, "truncated"},
		{"varint too long", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, protocol.ErrVarintOverflow, "varint"},
		{"field number zero", []byte{0x00, 0x00}, protocol.ErrInvalidTag, "invalid field tag"},
		{"end group at top level", []byte{0x0c}, protocol.ErrInvalidTag, "invalid field tag"},
		{"illegal wire type", []byte{0x0f}, protocol.ErrWrongWireType, "wrong wire type"},
		{"topic as varint", []byte{0x18, 0x01}, protocol.ErrWrongWireType, "field 3 of LogGroup"},
		{"log without time", []byte{0x0a, 0x00}, protocol.ErrMissingRequired, "Logs[0]: missing required field Time"},
		{"content without value", []byte{0x0a, 0x07, 0x08, 0x01, 0x12, 0x03, 0x0a, 0x01, 'k'}, protocol.ErrMissingRequired, "Logs[0]: Contents[0]: missing required field Value"},
		{"tag without key", []byte{0x32, 0x03, 0x12, 0x01, 'v'}, protocol.ErrMissingRequired, "LogTags[0]: missing required field Key"},
		{"time ns truncated", []byte{0x0a, 0x04, 0x08, 0x01, 0x25, 0x00}, protocol.ErrTruncated, "Logs[0]: truncated"},
		{"unterminated group", []byte{0x3b, 0x08, 0x01}, protocol.ErrTruncated, "truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var g protocol.LogGroup
			err := g.Unmarshal(tc.in)
			require.Error(t, err)
			require.ErrorIs(t, err, tc.cause)
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, protocol.CodePostBodyInvalid, protocol.CodeOf(err))
			require.Equal(t, 400, protocol.AsError(err).HTTPStatus)
			// The SDK rejects the same input.
			require.Error(t, proto.Unmarshal(tc.in, &sls.LogGroup{}), "SDK accepted it")
		})
	}
}

func TestDecodeSkipsUnknownFields(t *testing.T) {
	b := protocol.AppendLogGroup(nil, &protocol.LogGroup{Topic: "t", Logs: []protocol.Log{{Time: 9}}})
	b = append(b,
		0x78, 0x05, // field 15 varint
		0x81, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, // field 16 fixed64
		0x8a, 0x01, 0x02, 'h', 'i', // field 17 bytes
		0x93, 0x01, 0x08, 0x01, 0x94, 0x01, // field 18 group containing a varint
		0x9d, 0x01, 1, 2, 3, 4, // field 19 fixed32
	)
	var g protocol.LogGroup
	require.NoError(t, g.Unmarshal(b))
	require.Equal(t, "t", g.Topic)
	require.Len(t, g.Logs, 1)
	require.NoError(t, proto.Unmarshal(b, &sls.LogGroup{}))
}

func TestDecodeErrorsAreNotRetryable(t *testing.T) {
	var pl protocol.SlsLogPackageList
	err := pl.Unmarshal([]byte{0x0a, 0x02, 0x10, 0x01}) // package without data
	require.ErrorIs(t, err, protocol.ErrMissingRequired)
	require.ErrorContains(t, err, "packages[0]: missing required field data")
	var e *protocol.Error
	require.True(t, errors.As(err, &e))
	require.False(t, e.Temporary())
}
