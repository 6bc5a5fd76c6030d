package query

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// statsOf is what a store would record of logs' values: per key as the
// store's column holds it (the Matcher's reader), every distinct value,
// or with coarse only the numbers' range.
func statsOf(m *Matcher, logs []testLog, coarse bool) func(string) KeyValues {
	return func(key string) KeyValues {
		r := m.reader(key)
		kv := KeyValues{Known: true, None: true, Min: math.Inf(1), Max: math.Inf(-1)}
		numeric := r.typ == "long" || r.typ == "double"
		kv.Numeric = numeric
		for _, l := range logs {
			ml := &matchLog{Log: l.matchLog(), m: m}
			if numeric {
				v, ok := r.num(ml)
				if !ok {
					continue
				}
				if math.IsNaN(v) {
					return KeyValues{} // as the store: no statistics
				}
				kv.None = false
				kv.Min, kv.Max = min(kv.Min, v), max(kv.Max, v)
				if !slices.Contains(kv.Nums, v) {
					kv.Nums = append(kv.Nums, v)
				}
				continue
			}
			v, ok := r.text(ml)
			if !ok {
				continue
			}
			kv.None = false
			if !slices.Contains(kv.Text, v) {
				kv.Text = append(kv.Text, v)
			}
		}
		if coarse {
			kv.Nums, kv.Text = nil, nil
		}
		return kv
	}
}

// A pruner never rules out a set of logs one of which the search matches
// (random logs, sets and searches, checked against the Matcher), and it
// does rule sets out.
func TestPrunerNeverDropsAMatch(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 11))
	idx := testIndex()
	logs := randomLogs(r, 300)
	expr := randomSearch(r)
	m := &Matcher{idx: idx, line: LineTokenizer(idx), fields: map[string]string{}}
	for k, kc := range idx.Keys {
		m.fields[k] = normIndexType(kc.Type)
	}
	pruned, checked := 0, 0
	for range 600 {
		text := expr(2)
		q, err := Parse(text)
		if err != nil {
			continue
		}
		match, err := NewMatcher(q.Search, idx)
		if err != nil {
			continue
		}
		p := NewPruner(q.Search, idx)
		for range 10 {
			set := make([]testLog, 1+r.IntN(4))
			for i := range set {
				set[i] = logs[r.IntN(len(logs))]
			}
			matches := slices.ContainsFunc(set, func(l testLog) bool { return match.Match(l.matchLog()) })
			may := p.MayMatch(statsOf(m, set, r.IntN(3) == 0))
			if matches {
				require.True(t, may, "search %s ruled out a set it matches: %v", text, set)
			}
			if !may {
				pruned++
			}
			checked++
		}
	}
	t.Logf("%d of %d sets ruled out", pruned, checked)
	require.Greater(t, pruned, checked/20, "the pruner rules out sets")
}

func TestPrunerCases(t *testing.T) {
	idx := testIndex()
	m := &Matcher{idx: idx, line: LineTokenizer(idx), fields: map[string]string{}}
	for k, kc := range idx.Keys {
		m.fields[k] = normIndexType(kc.Type)
	}
	errors := statsOf(m, testLogs[0:1], false) // level ERROR, status 500, user Alice, topic web
	infos := statsOf(m, testLogs[1:2], false)  // level info, status 200, user bob
	coarse := statsOf(m, testLogs[0:4], true)  // status in [200, 502], latency in [0.05, 30]
	none := func(string) KeyValues { return KeyValues{} }
	for _, c := range []struct {
		q                            string
		errors, infos, coarse, nopes bool
	}{
		{`level:error`, true, false, true, true}, // the index is not case sensitive
		{`level:ERR*`, true, false, true, true},
		{`level:error or level:info`, true, true, true, true},
		{`level:error and status:200`, false, false, true, true},
		{`not level:error`, true, true, true, true},
		{`error`, true, true, true, true}, // full text: no statistics
		{`error and level:info`, false, true, true, true},
		{`user:alice`, false, false, true, true}, // user is case sensitive
		{`user:Alice`, true, false, true, true},
		{`status > 300`, true, false, true, true},
		{`status:404`, false, false, true, true}, // within [200, 502]: coarse may
		{`status > 600`, false, false, false, true},
		{`latency in [31 *]`, false, false, false, true},
		{`__topic__:web`, true, true, true, true},
		{`__topic__:sys`, false, false, true, true},
		{`__tag__:__path__:app.log`, true, false, true, true},
		{`__source__:10.0.*`, true, true, true, true},
		{`msg:orders`, true, false, true, true},
	} {
		q, err := Parse(c.q)
		require.NoError(t, err)
		p := NewPruner(q.Search, idx)
		require.Equal(t, c.errors, p.MayMatch(errors), "%s on the error log", c.q)
		require.Equal(t, c.infos, p.MayMatch(infos), "%s on the info log", c.q)
		require.Equal(t, c.coarse, p.MayMatch(coarse), "%s on ranges", c.q)
		require.Equal(t, c.nopes, p.MayMatch(none), "%s without statistics", c.q)
	}
	q, _ := Parse(`error or not level:x`)
	require.Nil(t, NewPruner(q.Search, idx), "nothing to prune on")
}
