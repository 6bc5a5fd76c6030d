package protocol_test

import (
	"math/rand/v2"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
)

// sdkSeeds are bodies encoded by the real SDK: a realistic nginx group and
// random groups.
func sdkSeeds(f *testing.F) [][]byte {
	f.Helper()
	groups := []*protocol.LogGroup{protocoltest.NginxLogGroup(2 << 10)}
	r := rand.New(rand.NewPCG(7, 8))
	for range 8 {
		groups = append(groups, protocoltest.RandomLogGroup(r))
	}
	var seeds [][]byte
	for _, g := range groups {
		b, err := proto.Marshal(protocoltest.ToSDK(g))
		require.NoError(f, err)
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzLogGroupDifferential decodes arbitrary bytes with our decoder and the
// SDK's: both must accept or both reject, agree on the content, and our
// re-encoding must decode to the same group.
func FuzzLogGroupDifferential(f *testing.F) {
	for _, s := range sdkSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x0a, 0x06, 0x08, 0x01, 0x1a, 0x01, 'v', 0x20}) // values=3 extension
	f.Add([]byte{0x3b, 0x08, 0x01, 0x3c})                        // group
	var g, again protocol.LogGroup
	f.Fuzz(func(t *testing.T, b []byte) {
		err := g.Unmarshal(b)
		var s sls.LogGroup
		sdkErr := proto.Unmarshal(b, &s)
		if (err == nil) != (sdkErr == nil) {
			t.Fatalf("acceptance differs: sluice %v, sdk %v", err, sdkErr)
		}
		if err != nil {
			require.Equal(t, protocol.CodePostBodyInvalid, protocol.CodeOf(err))
			return
		}
		want := protocoltest.Normalize(protocoltest.FromSDK(&s))
		got := protocoltest.Normalize(&g)
		for i := range got.Logs {
			got.Logs[i].Values = nil // the SDK keeps these as unknown bytes
		}
		require.Equal(t, want, got)

		enc := protocol.AppendLogGroup(nil, &g)
		require.Len(t, enc, protocol.LogGroupSize(&g))
		require.NoError(t, again.Unmarshal(enc))
		require.Equal(t, protocoltest.Normalize(&g), protocoltest.Normalize(&again))
	})
}

func FuzzLogGroupListDifferential(f *testing.F) {
	seeds := sdkSeeds(f)
	var sl sls.LogGroupList
	for _, s := range seeds {
		var g sls.LogGroup
		require.NoError(f, proto.Unmarshal(s, &g))
		sl.LogGroups = append(sl.LogGroups, &g)
	}
	b, err := proto.Marshal(&sl)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	var gl, again protocol.LogGroupList
	f.Fuzz(func(t *testing.T, b []byte) {
		err := gl.Unmarshal(b)
		var s sls.LogGroupList
		sdkErr := proto.Unmarshal(b, &s)
		if (err == nil) != (sdkErr == nil) {
			t.Fatalf("acceptance differs: sluice %v, sdk %v", err, sdkErr)
		}
		if err != nil {
			return
		}
		require.Len(t, gl.LogGroups, len(s.LogGroups))
		for i := range gl.LogGroups {
			got := protocoltest.Normalize(&gl.LogGroups[i])
			for j := range got.Logs {
				got.Logs[j].Values = nil
			}
			require.Equal(t, protocoltest.Normalize(protocoltest.FromSDK(s.LogGroups[i])), got)
		}
		require.NoError(t, again.Unmarshal(protocol.AppendLogGroupList(nil, &gl)))
		require.Len(t, again.LogGroups, len(gl.LogGroups))
	})
}

func FuzzSlsLogPackageListDifferential(f *testing.F) {
	for _, s := range sdkSeeds(f)[:3] {
		b, err := proto.Marshal(&sls.SlsLogPackageList{Packages: []*sls.SlsLogPackage{
			{Data: s, UncompressSize: proto.Int32(int32(len(s)))},
			{Data: s[:len(s)/2]},
		}})
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x04, 0x0a, 0x00, 0x18, 0x02}) // compress_type
	var pl, again protocol.SlsLogPackageList
	f.Fuzz(func(t *testing.T, b []byte) {
		err := pl.Unmarshal(b)
		var s sls.SlsLogPackageList
		sdkErr := proto.Unmarshal(b, &s)
		if (err == nil) != (sdkErr == nil) {
			t.Fatalf("acceptance differs: sluice %v, sdk %v", err, sdkErr)
		}
		if err != nil {
			return
		}
		require.Len(t, pl.Packages, len(s.Packages))
		for i, p := range pl.Packages {
			require.Equal(t, string(s.Packages[i].Data), string(p.Data))
			require.Equal(t, s.Packages[i].UncompressSize != nil, p.HasUncompressSize)
			require.Equal(t, s.Packages[i].GetUncompressSize(), p.UncompressSize)
		}
		require.NoError(t, again.Unmarshal(protocol.AppendSlsLogPackageList(nil, &pl)))
		require.Len(t, again.Packages, len(pl.Packages))
		for i := range pl.Packages {
			require.Equal(t, pl.Packages[i], again.Packages[i])
		}
	})
}
