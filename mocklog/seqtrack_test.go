package mocklog

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSeqTracker(t *testing.T) {
	var tr SeqTracker
	for s := uint64(1); s <= 1000; s++ {
		if s == 17 || (s >= 200 && s <= 463) || s == 1000 {
			continue
		}
		require.True(t, tr.Add(s))
	}
	require.False(t, tr.Add(5))
	require.False(t, tr.Add(5))
	require.True(t, tr.AddLine([]byte(`{"seq":2000}`)))
	require.False(t, tr.AddLine([]byte(`no number`)))
	require.EqualValues(t, 1000-1-264-1+1, tr.Count())
	require.EqualValues(t, 2, tr.Duplicates())
	require.Equal(t, []Range{{17, 17}, {200, 463}, {1000, 1000}}, tr.Missing(1, 1000))
	require.Equal(t, []Range{{1000, 1999}, {2001, 2100}}, tr.Missing(990, 2100)[0:2])
	require.Empty(t, tr.Missing(1, 16))
	require.Equal(t, []Range{{0, 0}}, tr.Missing(0, 16))
	require.EqualValues(t, 1000-1-264-1, tr.CountIn(1, 1000))
	require.EqualValues(t, 1, tr.CountIn(1999, 5000))
	require.Equal(t, "734/1000 delivered, 2 duplicates, missing 17, 200-463, 1000", tr.Summary(1, 1000))

	var empty SeqTracker
	require.Equal(t, []Range{{5, 300}}, empty.Missing(5, 300))
	require.Zero(t, empty.CountIn(0, 1000))
}

// TestSeqTrackerMatchesMap checks Missing and CountIn against a map for a
// pseudo-random pattern with word-aligned runs.
func TestSeqTrackerMatchesMap(t *testing.T) {
	var tr SeqTracker
	seen := map[uint64]bool{}
	x := uint64(12345)
	for range 5000 {
		x = x*6364136223846793005 + 1442695040888963407
		start := x >> 52 // < 4096
		n := (x >> 40) % 130
		for s := start; s < start+n; s++ {
			tr.Add(s)
			seen[s] = true
		}
	}
	var want []Range
	for s := uint64(3); s <= 4300; s++ {
		if seen[s] {
			continue
		}
		if len(want) > 0 && want[len(want)-1].Last == s-1 {
			want[len(want)-1].Last = s
		} else {
			want = append(want, Range{s, s})
		}
	}
	require.Equal(t, want, tr.Missing(3, 4300))
	var n uint64
	for s := range seen {
		if s >= 3 && s <= 4300 {
			n++
		}
	}
	require.Equal(t, n, tr.CountIn(3, 4300))
}
