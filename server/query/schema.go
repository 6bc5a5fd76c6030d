package query

import (
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
	if idx != nil {
		if _, exact := idx.Keys[key]; !exact {
			parent, rest, ok := strings.Cut(key, ".")
			for ok {
				if pc, found := idx.Keys[parent]; found && pc.Type == index.TypeJSON {
					return KeyColumns{Value: Expr{
						SQL:  "json_extract_string(" + QuoteIdent(ColFields) + "[?], ?)",
						Args: []any{parent, jsonPath(rest)},
					}}
				}
				var more string
				more, rest, ok = strings.Cut(rest, ".")
				parent += "." + more
			}
		}
	}
	return KeyColumns{Value: Expr{SQL: QuoteIdent(ColFields) + "[?]", Args: []any{key}}}
}

// jsonPath turns "a.b" into the DuckDB JSON path $."a"."b".
func jsonPath(dotted string) string {
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
