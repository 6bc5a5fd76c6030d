package query

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluicelog/sluice/server/index"
)

// Column names of the default DuckDB row layout (DefaultSchema).
const (
	ColTime   = "__time__"    // BIGINT unix seconds
	ColTimeNs = "__time_ns__" // INTEGER nanoseconds within the second
	ColTopic  = "__topic__"   // VARCHAR
	ColSource = "__source__"  // VARCHAR
	ColTags   = "__tags__"    // MAP(VARCHAR, VARCHAR): tag name (without __tag__:) → value
	ColFields = "__fields__"  // MAP(VARCHAR, VARCHAR): content key → value
	ColLine   = "__line__"    // VARCHAR: Tokenizer.AppendValue over every content value
)

// DefaultTableDDL is the CREATE TABLE body of the default layout, for
// tests and as the reference for stores.
const DefaultTableDDL = `(__time__ BIGINT, __time_ns__ INTEGER, __topic__ VARCHAR, __source__ VARCHAR,
 __tags__ MAP(VARCHAR, VARCHAR), __fields__ MAP(VARCHAR, VARCHAR), __line__ VARCHAR)`

// QuoteIdent quotes a SQL identifier for DuckDB.
func QuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// DefaultSchema maps keys onto the default layout (the Col* columns):
// content keys are "__fields__"[key] (the key is a parameter), tags are
// "__tags__"[name], "a.b" under a json-indexed key "a" is
// json_extract_string("__fields__"['a'], '$."b"'), __time__ is numeric.
// Stores with typed columns write their own Key func and fall back to
// this one.
func DefaultSchema(idx *index.Config) Schema {
	return Schema{
		Index: idx,
		Line:  Expr{SQL: QuoteIdent(ColLine)},
		Key: func(key string) (KeyColumns, error) {
			return DefaultKey(idx, key), nil
		},
	}
}

// DefaultKey is DefaultSchema's Key func.
func DefaultKey(idx *index.Config, key string) KeyColumns {
	switch key {
	case ColTime:
		return KeyColumns{
			Value:  Expr{SQL: "CAST(" + QuoteIdent(ColTime) + " AS VARCHAR)"},
			Number: Expr{SQL: QuoteIdent(ColTime)},
			Type:   index.TypeLong,
		}
	case ColTopic, ColSource:
		return KeyColumns{Value: Expr{SQL: QuoteIdent(key)}, Type: index.TypeText}
	}
	if name, ok := strings.CutPrefix(key, TagPrefix); ok {
		return KeyColumns{Value: Expr{SQL: QuoteIdent(ColTags) + "[?]", Args: []any{name}}, Type: index.TypeText}
	}
	if parent, path, ok := jsonParent(idx, key); ok {
		return KeyColumns{Value: Expr{
			SQL:  "json_extract_string(" + QuoteIdent(ColFields) + "[?], ?)",
			Args: []any{parent, JSONPath(path)},
		}}
	}
	return KeyColumns{Value: Expr{SQL: QuoteIdent(ColFields) + "[?]", Args: []any{key}}}
}

// jsonParent splits "a.b.c" into a json-indexed key "a" (or "a.b") and
// the path below it, for keys that are not indexed themselves.
func jsonParent(idx *index.Config, key string) (parent, path string, ok bool) {
	if idx == nil {
		return "", "", false
	}
	if _, exact := idx.Keys[key]; exact {
		return "", "", false
	}
	parent, path, more := strings.Cut(key, ".")
	for more {
		if pc, found := idx.Keys[parent]; found && pc.Type == index.TypeJSON {
			return parent, path, true
		}
		var next string
		next, path, more = strings.Cut(path, ".")
		parent += "." + next
	}
	return "", "", false
}

// JSONPath turns "a.b" into the DuckDB JSON path $."a"."b".
func JSONPath(dotted string) string {
	var b strings.Builder
	b.WriteString("$")
	for _, part := range strings.Split(dotted, ".") {
		b.WriteString(`."`)
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(part, `\`, `\\`), `"`, `\"`))
		b.WriteString(`"`)
	}
	return b.String()
}

// HistogramInterval picks the bucket width for GetHistograms when the
// caller gave none: about 60 buckets over [from, to), rounded up to a
// whole number of seconds from 1s, 5s, 10s, 30s, 1m, 5m, 10m, 30m, 1h,
// 6h, 12h, 1d, then whole days.
func HistogramInterval(from, to time.Time) time.Duration {
	span := to.Sub(from)
	if span <= 0 {
		return time.Second
	}
	want := span / 60
	for _, d := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
		time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour,
		6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if want <= d {
			return d
		}
	}
	days := (want + 24*time.Hour - 1) / (24 * time.Hour)
	return days * 24 * time.Hour
}

// HistogramBucket returns a BIGINT expression of the start (unix seconds)
// of the bucket holding timeExpr (unix seconds), buckets being aligned to
// from and interval wide (rounded up to whole seconds, at least 1s):
// GROUP BY it and COUNT(*).
func HistogramBucket(timeExpr Expr, from time.Time, interval time.Duration) Expr {
	step := int64((interval + time.Second - 1) / time.Second)
	if step < 1 {
		step = 1
	}
	start := from.Unix()
	args := append([]any{start}, timeExpr.Args...)
	args = append(args, start, step, step)
	return Expr{
		SQL:  "(CAST(? AS BIGINT) + ((" + timeExpr.SQL + " - CAST(? AS BIGINT)) // CAST(? AS BIGINT)) * CAST(? AS BIGINT))",
		Args: args,
	}
}

// TypedColumnsSchema maps keys onto a layout where every key with a field
// index is a column named after the key (BIGINT for long, DOUBLE for
// double, VARCHAR otherwise; NULL when absent), __time__, __topic__ and
// __source__ are columns of those names, tags are a JSON object in the
// column tagsJSON (json_extract_string(tags, '$."name"')) and line is the
// full-text token column ("" = no full-text search). Keys without a field
// index are an error, as in SLS. This is the server/store/duckdb layout.
func TypedColumnsSchema(idx *index.Config, line, tagsJSON string) Schema {
	s := Schema{Index: idx}
	if line != "" {
		s.Line = Expr{SQL: QuoteIdent(line)}
	}
	s.Key = func(key string) (KeyColumns, error) {
		switch key {
		case ColTime:
			return KeyColumns{
				Value:  Expr{SQL: "CAST(" + QuoteIdent(ColTime) + " AS VARCHAR)"},
				Number: Expr{SQL: QuoteIdent(ColTime)},
				Type:   index.TypeLong,
			}, nil
		case ColTopic, ColSource:
			return KeyColumns{Value: Expr{SQL: QuoteIdent(key)}, Type: index.TypeText}, nil
		}
		if name, ok := strings.CutPrefix(key, TagPrefix); ok {
			return KeyColumns{
				Value: Expr{SQL: "json_extract_string(" + QuoteIdent(tagsJSON) + ", ?)", Args: []any{JSONPath(name)}},
				Type:  index.TypeText,
			}, nil
		}
		var kc index.KeyConfig
		ok := false
		if idx != nil {
			kc, ok = idx.Keys[key]
		}
		if !ok {
			if parent, path, found := jsonParent(idx, key); found {
				return KeyColumns{Value: Expr{
					SQL:  "json_extract_string(" + QuoteIdent(parent) + ", ?)",
					Args: []any{JSONPath(path)},
				}}, nil
			}
			return KeyColumns{}, fmt.Errorf("key %q has no field index: add it to the logstore's index to search it", key)
		}
		col := Expr{SQL: QuoteIdent(key)}
		switch kc.Type {
		case index.TypeLong, index.TypeDouble:
			return KeyColumns{Value: col, Number: col, Type: kc.Type}, nil
		}
		return KeyColumns{Value: col, Type: kc.Type}, nil
	}
	return s
}

// Compiled is a whole compiled "search | SQL" query.
type Compiled struct {
	Query *Query
	Where Expr // the search as a boolean expression over one row
	SQL   Expr // the sandboxed statement; empty when the query has no SQL part
}

// Compile parses text, compiles its search for s and sandboxes its SQL
// part with opt.
func Compile(text string, s Schema, opt SandboxOptions) (*Compiled, error) {
	q, err := Parse(text)
	if err != nil {
		return nil, err
	}
	where, err := CompileSearch(q.Search, s)
	if err != nil {
		return nil, err
	}
	c := &Compiled{Query: q, Where: where}
	if q.HasSQL {
		if c.SQL, err = q.SandboxSQL(opt); err != nil {
			return nil, err
		}
	}
	return c, nil
}
