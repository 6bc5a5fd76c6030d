package duckdb

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/query"
)

// Segment statistics (shared storage). A query over object storage must
// download every segment it reads before DuckDB opens it, so a segment
// whose logs cannot match the search is best never fetched. Each segment's
// catalog row carries a few statistics, recorded when the segment is
// written (and merged when segments are compacted), per key a search
// reads by column: __topic__, __source__, each tag, and each text, long
// or double field column:
//
//   - whether any log of the segment has a value for the key;
//   - up to statsMaxValues distinct values, listed exactly (hosts, status
//     codes, levels, topics, tags: the keys such searches filter on);
//   - for numbers, their minimum and maximum.
//
// A query tests them with query.Pruner, which evaluates the search the
// way the store's SQL does for one value — the key's tokens, case
// sensitivity and wildcards — so `host:web` keeps a segment holding
// "WEB-01" when host's index ignores case. Text keys get no min/max: a
// term matches tokens inside a value, so no order of the values bounds
// which of them match. Parquet's own min/max per row group still prunes
// row groups once a file is read; these statistics decide whether to
// fetch it at all.
//
// A segment without statistics (written before they existed, or whose
// statistics did not fit) is always read: statistics only ever rule a
// segment out, never in.
const (
	statsMaxValues     = 32   // distinct values listed per key
	statsMaxValueBytes = 128  // a longer value: the key's values are not listed
	statsMaxBytes      = 2048 // per segment, JSON; keys that do not fit are left out
	statsMaxTagSets    = 256  // distinct tag objects a segment may have for tag statistics
)

// segStats are one segment's statistics, stored as JSON in its catalog
// row.
type segStats struct {
	// Keys by search key: "__topic__", "__source__", "__tag__:<name>", or
	// a field column's key.
	Keys map[string]*keyStats `json:"k,omitempty"`
	// AllTags: every tag name the segment's logs have is in Keys, so a
	// tag not there is absent from every log.
	AllTags bool `json:"tags,omitempty"`
}

// keyStats are one key's statistics; an empty one says the key has
// values but they are not listed.
type keyStats struct {
	None bool      `json:"none,omitempty"` // no log has a value
	Text []string  `json:"s,omitempty"`    // every distinct text value
	Nums []float64 `json:"n,omitempty"`    // every distinct number
	Min  *float64  `json:"lo,omitempty"`   // numbers' range
	Max  *float64  `json:"hi,omitempty"`
}

// textSet collects a key's distinct text values.
type textSet struct {
	any  bool
	over bool // too many or too long: not listed
	vals map[string]struct{}
	last []byte // the previous value (runs of one value are common)
}

func (t *textSet) add(v []byte) {
	t.any = true
	if t.over || t.vals != nil && bytes.Equal(v, t.last) {
		return
	}
	t.last = v
	if _, ok := t.vals[string(v)]; ok {
		return
	}
	if len(v) > statsMaxValueBytes || len(t.vals) == statsMaxValues {
		t.over, t.vals = true, nil
		return
	}
	if t.vals == nil {
		t.vals = map[string]struct{}{}
	}
	t.vals[string(v)] = struct{}{}
}

func (t *textSet) stats() *keyStats {
	if !t.any {
		return &keyStats{None: true}
	}
	ks := &keyStats{}
	if !t.over {
		for v := range t.vals {
			ks.Text = append(ks.Text, v)
		}
		slices.Sort(ks.Text)
	}
	return ks
}

// numSet collects a key's numbers.
type numSet struct {
	any      bool
	bad      bool // NaN, ±Inf, or a long beyond ±2^53: no statistics
	over     bool
	min, max float64
	vals     map[float64]struct{}
}

func (n *numSet) add(v float64) {
	if n.bad {
		return
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		n.bad = true
		return
	}
	if !n.any {
		n.any, n.min, n.max = true, v, v
	} else {
		n.min, n.max = min(n.min, v), max(n.max, v)
	}
	if n.over {
		return
	}
	if _, ok := n.vals[v]; ok {
		return
	}
	if len(n.vals) == statsMaxValues {
		n.over, n.vals = true, nil
		return
	}
	if n.vals == nil {
		n.vals = map[float64]struct{}{}
	}
	n.vals[v] = struct{}{}
}

func (n *numSet) stats() *keyStats {
	switch {
	case n.bad:
		return nil
	case !n.any:
		return &keyStats{None: true}
	}
	lo, hi := n.min, n.max
	ks := &keyStats{Min: &lo, Max: &hi}
	if !n.over {
		for v := range n.vals {
			ks.Nums = append(ks.Nums, v)
		}
		slices.Sort(ks.Nums)
	}
	return ks
}

// exactLong is the range in which a long converts to float64 exactly (and
// compares as DuckDB compares it).
const exactLong = 1 << 53

// segmentStats returns the statistics of parts (one segment's rows) as
// JSON, "" when there are none.
func segmentStats(sch *schema, parts []*part) string {
	st := &segStats{Keys: map[string]*keyStats{}}
	var topic, source textSet
	tagSets := map[string]struct{}{}
	for _, p := range parts {
		topic.addSpans(&p.cols[colTopic], p.n)
		source.addSpans(&p.cols[colSource], p.n)
		c := &p.cols[colTags]
		var last span
		for i, sp := range c.spans[:p.n] {
			if i > 0 && sp == last || tagSets == nil {
				continue
			}
			last = sp
			tagSets[string(c.data[sp.off:sp.off+sp.n])] = struct{}{}
			if len(tagSets) > statsMaxTagSets {
				tagSets = nil
			}
		}
	}
	st.Keys[ColTopic], st.Keys[ColSource] = topic.stats(), source.stats()
	if tagSets != nil {
		st.AllTags = tagStats(st.Keys, tagSets)
	}
	for fi, f := range sch.fields {
		if strings.HasPrefix(f.Key, query.TagPrefix) {
			continue // a search reads tags, not this column
		}
		var ks *keyStats
		switch f.Type {
		case index.TypeLong, index.TypeDouble:
			var ns numSet
			for _, p := range parts {
				c := &p.cols[nFixed+fi]
				for r := range p.n {
					if c.null[r] {
						continue
					}
					if f.Type == index.TypeDouble {
						ns.add(c.floats[r])
					} else if x := c.ints[r]; x > -exactLong && x < exactLong {
						ns.add(float64(x))
					} else {
						ns.bad = true
					}
				}
			}
			ks = ns.stats()
		case index.TypeText:
			var ts textSet
			for _, p := range parts {
				c := &p.cols[nFixed+fi]
				for r, sp := range c.spans[:p.n] {
					if !c.null[r] {
						ts.add(c.data[sp.off : sp.off+sp.n])
					}
				}
			}
			ks = ts.stats()
		}
		if ks != nil {
			st.Keys[f.Key] = ks
		}
	}
	return st.encode()
}

// addSpans adds the values of a per-group column (topic, source): rows of
// one group share a span, so runs are skipped without a look at the bytes.
func (t *textSet) addSpans(c *column, n int) {
	var last span
	for i, sp := range c.spans[:n] {
		if i > 0 && sp == last {
			continue
		}
		last = sp
		t.add(c.data[sp.off : sp.off+sp.n])
	}
}

// tagStats adds the statistics of every tag of the distinct tag objects
// (encodeTags' JSON) to keys and reports whether every tag is there.
func tagStats(keys map[string]*keyStats, tagSets map[string]struct{}) bool {
	sets := map[string]*textSet{}
	for obj := range tagSets {
		// Every pair, a repeated name's included: DuckDB's
		// json_extract_string reads one of them.
		dec := json.NewDecoder(strings.NewReader(obj))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return false
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return false
			}
			v, err := dec.Token()
			name, ok1 := k.(string)
			val, ok2 := v.(string)
			if err != nil || !ok1 || !ok2 {
				return false
			}
			ts := sets[name]
			if ts == nil {
				ts = &textSet{}
				sets[name] = ts
			}
			ts.add([]byte(val))
		}
	}
	for name, ts := range sets {
		keys[query.TagPrefix+name] = ts.stats()
	}
	return true
}

// encode returns st as JSON within statsMaxBytes: the keys whose lists
// are longest lose them first (a tag keeps an empty entry while AllTags
// holds, a field is left out), then, if still too big, the tags' entries
// and AllTags go.
func (st *segStats) encode() string {
	b, _ := json.Marshal(st) // cannot fail: no NaN or Inf
	if len(b) <= statsMaxBytes {
		return string(b)
	}
	keys := make([]string, 0, len(st.Keys))
	size := map[string]int{}
	for k, ks := range st.Keys {
		kb, _ := json.Marshal(ks)
		keys, size[k] = append(keys, k), len(kb)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(size[b], size[a]), strings.Compare(a, b)) })
	total := len(b)
	for _, k := range keys {
		if total <= statsMaxBytes {
			break
		}
		if strings.HasPrefix(k, query.TagPrefix) && st.AllTags {
			st.Keys[k] = &keyStats{}
			total -= size[k] - 2
			continue
		}
		delete(st.Keys, k)
		total -= size[k] + len(k) + 4
	}
	if total > statsMaxBytes && st.AllTags {
		st.AllTags = false
		for k := range st.Keys {
			if strings.HasPrefix(k, query.TagPrefix) {
				delete(st.Keys, k)
			}
		}
	}
	if b, _ = json.Marshal(st); len(b) > statsMaxBytes || len(st.Keys) == 0 && !st.AllTags {
		return ""
	}
	return string(b)
}

func decodeStats(s string) *segStats {
	if s == "" {
		return nil
	}
	var st segStats
	if json.Unmarshal([]byte(s), &st) != nil {
		return nil // unreadable: the segment is read
	}
	return &st
}

// lookup returns the statistics of key; ok is false when unknown.
func (st *segStats) lookup(key string) (*keyStats, bool) {
	if ks, ok := st.Keys[key]; ok {
		return ks, true
	}
	if st.AllTags && strings.HasPrefix(key, query.TagPrefix) {
		return &keyStats{None: true}, true
	}
	return nil, false
}

// mergeStats returns the statistics of the union of segments with the
// given statistics (JSON), "" unless every one has some.
func mergeStats(all []string) string {
	sts := make([]*segStats, len(all))
	keys := map[string]bool{}
	out := &segStats{Keys: map[string]*keyStats{}, AllTags: true}
	for i, s := range all {
		if sts[i] = decodeStats(s); sts[i] == nil {
			return ""
		}
		out.AllTags = out.AllTags && sts[i].AllTags
		for k := range sts[i].Keys {
			keys[k] = true
		}
	}
	for k := range keys {
		var ts textSet
		var ns numSet
		numeric, known := false, true
		for _, st := range sts {
			ks, ok := st.lookup(k)
			if !ok {
				known = false
				break
			}
			switch {
			case ks.None:
			case ks.Min != nil:
				numeric = true
				if ks.Nums == nil {
					ns.over = true
				}
				for _, v := range ks.Nums {
					ns.add(v)
				}
				ns.add(*ks.Min)
				ns.add(*ks.Max)
			default:
				ts.any = true
				if ks.Text == nil {
					ts.over = true
				}
				for _, v := range ks.Text {
					ts.add([]byte(v))
				}
			}
		}
		if numeric && ts.any {
			known = false // a key's type changed: leave it out
		}
		switch {
		case !known && strings.HasPrefix(k, query.TagPrefix) && out.AllTags:
			out.Keys[k] = &keyStats{}
		case !known:
		case numeric:
			if ks := ns.stats(); ks != nil {
				out.Keys[k] = ks
			}
		default:
			out.Keys[k] = ts.stats()
		}
	}
	return out.encode()
}

// keyValues is what the segment's statistics say of key for a query over
// schema sch (query.Pruner's view of them).
func (sg *segment) keyValues(st *segStats, sch *schema, key string) query.KeyValues {
	numeric := false
	switch key {
	case ColTime:
		return query.KeyValues{Known: true, Numeric: true, Min: float64(sg.minTime), Max: float64(sg.maxTime)}
	case ColTopic, ColSource:
	default:
		if !strings.HasPrefix(key, query.TagPrefix) {
			// A field column, read as the segment wrote it (not cast).
			i, ok := sch.byKey[key]
			if !ok {
				return query.KeyValues{}
			}
			t := sch.fields[i].Type
			if wrote, found := sg.fieldType(key); !found || wrote != t {
				return query.KeyValues{}
			}
			numeric = t == index.TypeLong || t == index.TypeDouble
		}
	}
	ks, ok := st.lookup(key)
	switch {
	case !ok:
		return query.KeyValues{}
	case ks.None:
		return query.KeyValues{Known: true, Numeric: numeric, None: true}
	case numeric && ks.Min != nil && ks.Max != nil:
		return query.KeyValues{Known: true, Numeric: true, Nums: ks.Nums, Min: *ks.Min, Max: *ks.Max}
	case !numeric && ks.Min == nil && ks.Text != nil:
		return query.KeyValues{Known: true, Text: ks.Text}
	}
	return query.KeyValues{} // values not listed
}

// prune drops from a shared view the segments whose statistics show that
// no log of theirs can match the search (and topic), before any of them is
// fetched.
func (s *Store) prune(v *view, c *compiled, project, logstore, topic string) {
	if v.objects == nil {
		return
	}
	p := query.NewPruner(c.q.Search, v.schema.idx)
	kept, pruned := 0, 0
	if p == nil && topic == "" {
		for _, d := range v.days {
			kept += len(v.segs[d])
		}
		s.m.querySegments.WithLabelValues("searched").Add(float64(kept))
		return
	}
	days := v.days[:0:0]
	for _, d := range v.days {
		var keep []*segment
		for _, sg := range v.segs[d] {
			if st := s.stats.get(sg); st == nil || sg.mayMatch(st, p, v.schema, topic) {
				keep = append(keep, sg)
			}
		}
		kept += len(keep)
		pruned += len(v.segs[d]) - len(keep)
		if len(keep) == 0 && !v.ls.days[d] {
			delete(v.segs, d)
			continue
		}
		v.segs[d] = keep
		days = append(days, d)
	}
	v.days = days
	s.m.querySegments.WithLabelValues("searched").Add(float64(kept))
	s.m.querySegments.WithLabelValues("pruned").Add(float64(pruned))
	if pruned > 0 {
		s.log.Debug("segments skipped by their statistics", "project", project, "logstore", logstore,
			"searched", kept, "pruned", pruned)
	}
}

// mayMatch reports whether a log of the segment may match the search p
// (nil: any) and the topic ("" = any).
func (sg *segment) mayMatch(st *segStats, p *query.Pruner, sch *schema, topic string) bool {
	if topic != "" {
		if kv := sg.keyValues(st, sch, ColTopic); kv.Known && !kv.None && !slices.Contains(kv.Text, topic) {
			return false
		}
	}
	return p.MayMatch(func(key string) query.KeyValues { return sg.keyValues(st, sch, key) })
}

// statsCache holds decoded segment statistics by segment id (segments are
// immutable and ids never reused), so a query does not decode the JSON of
// every segment it lists again.
type statsCache struct {
	mu sync.Mutex
	m  map[int64]*segStats
}

// statsCacheMax bounds the cache (about 1 KiB an entry); when full it
// starts over.
const statsCacheMax = 1 << 16

func (c *statsCache) get(sg *segment) *segStats {
	if sg.stats == "" {
		return nil
	}
	c.mu.Lock()
	st, ok := c.m[sg.id]
	c.mu.Unlock()
	if ok {
		return st
	}
	st = decodeStats(sg.stats)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= statsCacheMax {
		c.m = map[int64]*segStats{}
	}
	c.m[sg.id] = st
	c.mu.Unlock()
	return st
}
