package query

import (
	"slices"

	"github.com/sluicelog/sluice/server/index"
)

// KeyValues is what a store knows of one key's values over a set of logs
// (a segment file), for a Pruner. Values are as the store's column holds
// them, the column a search reads for the key (TypedColumnsSchema).
type KeyValues struct {
	// Known says the other fields hold; when false nothing is known of
	// the key and the set may match any term on it.
	Known bool
	// Numeric: a long or double column (Nums, Min, Max); else text (Text).
	Numeric bool
	// None: no log of the set has a value for the key (NULL throughout).
	None bool
	// Text is every distinct value of a text key; nil when not listed.
	Text []string
	// Nums is every distinct number of a numeric key; nil when not listed.
	// Nums, Min and Max are never NaN.
	Nums []float64
	// Min and Max bound the numbers of a numeric key that has a value.
	Min, Max float64
}

// Pruner tells from what a store knows of a set of logs' values (per-file
// statistics) whether a search can match any log of the set, so that the
// store need not read a file no log of which can match. It errs only on
// the side of "may match": a set is ruled out only when a condition every
// matching log meets fails for every value the set holds, tested as
// Matcher (and so CompileSearch) tests one log's value — the key's
// tokens, case sensitivity and wildcards included.
//
// `a and b` may match when both may; `a or b` when either may; `not a`,
// full-text terms and keys the store knows nothing of always may.
type Pruner struct {
	may func(stats func(key string) KeyValues) bool
}

// NewPruner returns the pruner of a parsed search over a logstore with
// index idx (nil: no index), or nil when the search constrains no key a
// store could know of (every set may match).
func NewPruner(n Node, idx *index.Config) *Pruner {
	m := &Matcher{idx: idx, line: LineTokenizer(idx), fields: map[string]string{}}
	if idx != nil {
		for k, kc := range idx.Keys {
			m.fields[k] = normIndexType(kc.Type)
		}
	}
	may, useful := m.mayNode(n)
	if !useful {
		return nil
	}
	return &Pruner{may: may}
}

// MayMatch reports whether a log of the set stats describes may match.
func (p *Pruner) MayMatch(stats func(key string) KeyValues) bool {
	return p == nil || p.may(stats)
}

type mayFunc = func(func(string) KeyValues) bool

func always(func(string) KeyValues) bool { return true }

// mayNode returns n's may-match test and whether it can ever say no.
func (m *Matcher) mayNode(n Node) (mayFunc, bool) {
	switch n := n.(type) {
	case *And, *Or:
		items, and := junction(n)
		var fs []mayFunc
		for _, x := range items {
			f, useful := m.mayNode(x)
			switch {
			case useful:
				fs = append(fs, f)
			case !and:
				return always, false // one operand always may: so does the or
			}
		}
		if len(fs) == 0 {
			return always, false
		}
		return allOrAny(fs, and), true
	case *Term:
		if n.Key == "" {
			return always, false
		}
		return m.mayTerm(n)
	case *Exists:
		key := n.Key
		return func(st func(string) KeyValues) bool {
			kv := st(key)
			return !kv.Known || !kv.None
		}, true
	case *Compare:
		return m.mayNumber(n.Key, func(kv KeyValues) bool {
			want := numArg(n.Value)
			if kv.Nums != nil {
				return slices.ContainsFunc(kv.Nums, func(v float64) bool { return compareNum(v, n.Op, want) })
			}
			switch n.Op {
			case ">", ">=":
				return compareNum(kv.Max, n.Op, want)
			case "<", "<=":
				return compareNum(kv.Min, n.Op, want)
			}
			return compareNum(kv.Min, "<=", want) && compareNum(kv.Max, ">=", want)
		})
	case *Range:
		lo, hi := ">", "<"
		if n.LoIncl {
			lo = ">="
		}
		if n.HiIncl {
			hi = "<="
		}
		return m.mayNumber(n.Key, func(kv KeyValues) bool {
			ok := func(lv, hv float64) bool {
				return (n.Lo == "" || compareNum(hv, lo, numArg(n.Lo))) && (n.Hi == "" || compareNum(lv, hi, numArg(n.Hi)))
			}
			if kv.Nums != nil {
				return slices.ContainsFunc(kv.Nums, func(v float64) bool { return ok(v, v) })
			}
			return ok(kv.Min, kv.Max)
		})
	}
	return always, false // *All, *Not
}

// mayNumber is the test of a numeric condition on key: test gets the
// key's statistics when they are numbers and the key has a value.
func (m *Matcher) mayNumber(key string, test func(KeyValues) bool) (mayFunc, bool) {
	r := m.reader(key)
	if r.typ != index.TypeLong && r.typ != index.TypeDouble {
		return always, false // read as TRY_CAST of text: statistics of text say little
	}
	return func(st func(string) KeyValues) bool {
		kv := st(key)
		switch {
		case !kv.Known || !kv.Numeric:
			return true
		case kv.None:
			return false
		}
		return test(kv)
	}, true
}

func (m *Matcher) mayTerm(t *Term) (mayFunc, bool) {
	r := m.reader(t.Key)
	if r.typ == index.TypeLong || r.typ == index.TypeDouble {
		if t.Value == "" || len(t.Wild) > 0 || !isNumber(t.Value) {
			return always, false // an error or never true: the store's business
		}
		want := numArg(t.Value)
		return m.mayNumber(t.Key, func(kv KeyValues) bool {
			if kv.Nums != nil {
				return slices.ContainsFunc(kv.Nums, func(v float64) bool { return compareNum(v, "=", want) })
			}
			return compareNum(kv.Min, "<=", want) && compareNum(kv.Max, ">=", want)
		})
	}
	if r.typ == index.TypeJSON {
		return always, false
	}
	var test func(string) bool
	switch tt := valueTest(r.tok, t); {
	case t.Value == "":
		test = func(v string) bool { return v == "" }
	case tt.any:
		test = func(string) bool { return true }
	default:
		f, err := tt.compile()
		if err != nil {
			return always, false
		}
		test = f
	}
	key := t.Key
	return func(st func(string) KeyValues) bool {
		kv := st(key)
		switch {
		case !kv.Known || kv.Numeric:
			return true
		case kv.None:
			return false
		case kv.Text == nil:
			return true
		}
		return slices.ContainsFunc(kv.Text, test)
	}, true
}
