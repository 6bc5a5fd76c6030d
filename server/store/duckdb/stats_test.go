package duckdb

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/protocol/protocoltest"
	"github.com/sluicelog/sluice/server/query"
)

func textStats(vals ...string) *keyStats {
	var ts textSet
	for _, v := range vals {
		ts.add([]byte(v))
	}
	return ts.stats()
}

// Statistics stay within statsMaxBytes: the longest lists go first, a tag
// keeps an entry saying it is there (its values unknown), and what is
// left out is unknown, never "absent".
func TestStatsBudget(t *testing.T) {
	st := &segStats{Keys: map[string]*keyStats{"host": textStats("a", "b"), "__topic__": textStats("t")}, AllTags: true}
	for i := range 30 {
		var vals []string
		for j := range 30 {
			vals = append(vals, fmt.Sprintf("value-%d-%d", i, j))
		}
		st.Keys[fmt.Sprintf("__tag__:t%d", i)] = textStats(vals...)
		st.Keys[fmt.Sprintf("f%d", i)] = textStats(vals...)
	}
	b := st.encode()
	require.NotEmpty(t, b)
	require.LessOrEqual(t, len(b), statsMaxBytes)
	got := decodeStats(b)
	ks, ok := got.lookup("host")
	require.True(t, ok, "the small lists stay")
	require.Equal(t, []string{"a", "b"}, ks.Text)
	ks, ok = got.lookup("__tag__:t3")
	require.True(t, ok)
	require.Nil(t, ks.Text, "a tag whose list went: present, values unknown")
	require.False(t, ks.None)
	_, ok = got.lookup("f3")
	require.False(t, ok, "a field whose list went: unknown")
	ks, ok = got.lookup("__tag__:absent")
	require.True(t, ok)
	require.True(t, ks.None, "every tag is listed: one not listed is absent")

	// Too many values, or too long ones, are not listed.
	var many []string
	for i := range statsMaxValues + 1 {
		many = append(many, fmt.Sprint(i))
	}
	require.Nil(t, textStats(many...).Text)
	require.Nil(t, textStats("a", strings.Repeat("x", statsMaxValueBytes+1)).Text)
	require.Equal(t, &keyStats{None: true}, textStats())
}

// Merged statistics are the union; a key unknown in one input is unknown
// in the merge, and an input without statistics leaves the merge without.
func TestMergeStats(t *testing.T) {
	num := func(vals ...float64) *keyStats {
		var ns numSet
		for _, v := range vals {
			ns.add(v)
		}
		return ns.stats()
	}
	a := (&segStats{Keys: map[string]*keyStats{"host": textStats("a"), "status": num(200), "user": textStats("u1"),
		"__tag__:region": textStats("eu")}, AllTags: true}).encode()
	b := (&segStats{Keys: map[string]*keyStats{"host": textStats("b"), "status": num(500, 404), "user": {None: true}}}).encode()
	m := decodeStats(mergeStats([]string{a, b}))
	require.NotNil(t, m)
	ks, _ := m.lookup("host")
	require.Equal(t, []string{"a", "b"}, ks.Text)
	ks, _ = m.lookup("status")
	require.Equal(t, []float64{200, 404, 500}, ks.Nums)
	require.Equal(t, 200.0, *ks.Min)
	require.Equal(t, 500.0, *ks.Max)
	ks, _ = m.lookup("user")
	require.Equal(t, []string{"u1"}, ks.Text)
	require.False(t, m.AllTags, "b does not list its tags")
	_, ok := m.lookup("__tag__:region")
	require.False(t, ok, "unknown in b")
	require.Empty(t, mergeStats([]string{a, ""}), "a segment without statistics")
	require.NotContains(t, mergeStats([]string{a, a}), "NaN")
	var ns numSet
	ns.add(1)
	ns.add(math.NaN())
	require.Nil(t, ns.stats(), "NaN: no statistics")
}

// A field read with another type than the segment wrote, or unknown, is
// never ruled out.
func TestKeyValuesOnlyForTheColumnRead(t *testing.T) {
	st := decodeStats((&segStats{Keys: map[string]*keyStats{"status": textStats("200")}}).encode())
	sg := &segment{fields: []fieldColumn{{Key: "status", Type: "text"}}}
	sch := newSchema(nil, []fieldColumn{{Key: "status", Type: "long"}})
	require.False(t, sg.keyValues(st, sch, "status").Known)
	sch = newSchema(nil, []fieldColumn{{Key: "status", Type: "text"}})
	require.Equal(t, query.KeyValues{Known: true, Text: []string{"200"}}, sg.keyValues(st, sch, "status"))
	require.False(t, sg.keyValues(st, sch, "other").Known)
}

// BenchmarkSegmentStats measures gathering a segment's statistics (shared
// storage: done while the segment is written and uploaded) over nginx
// lines with BenchmarkBuildRows' index.
func BenchmarkSegmentStats(b *testing.B) {
	sch := newSchema(benchIndex(), desiredFields(nil, benchIndex()))
	ls := &logstore{id: 1, schema: sch}
	g := protocoltest.NginxLogGroup(4 << 20)
	parts, _, _ := buildRows(nil, ls, sch, math.MinInt32, []protocol.LogGroup{*g}, time.Time{})
	ps := make([]*part, len(parts))
	for i := range parts {
		ps[i] = &parts[i]
	}
	var st string
	for b.Loop() {
		st = segmentStats(sch, ps)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(g.Logs)), "ns/line")
	b.ReportMetric(float64(len(st)), "stats-bytes")
}
