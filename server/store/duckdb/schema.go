package duckdb

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/query"
)

// Column names of every partition table. Field-indexed keys follow as
// typed columns named after the key. User SQL (server/query's sandbox) sees
// these names.
const (
	ColTime        = "__time__"         // BIGINT, unix seconds
	ColTimeNs      = "__time_ns__"      // INTEGER, nanoseconds within the second
	ColTopic       = "__topic__"        // VARCHAR
	ColSource      = "__source__"       // VARCHAR
	ColTags        = "__tags__"         // VARCHAR, JSON object of group tags
	ColReceiveTime = "__receive_time__" // BIGINT, unix seconds the server received the log
	ColContents    = "__contents__"     // BLOB, all keys/values (see encode.go)
	ColLine        = "__line__"         // VARCHAR, full-text tokens (query.Tokenizer.AppendValue)
)

var fixedColumns = [...]struct{ name, typ string }{
	{ColTime, "BIGINT"},
	{ColTimeNs, "INTEGER"},
	{ColTopic, "VARCHAR"},
	{ColSource, "VARCHAR"},
	{ColTags, "VARCHAR"},
	{ColReceiveTime, "BIGINT"},
	{ColContents, "BLOB"},
	{ColLine, "VARCHAR"},
}

const nFixed = len(fixedColumns)

// Indices of the fixed columns in fixedColumns and in a part's columns.
const (
	colTime = iota
	colTimeNs
	colTopic
	colSource
	colTags
	colReceiveTime
	colContents
	colLine
)

func isFixedColumn(name string) bool {
	for _, c := range fixedColumns {
		if c.name == name {
			return true
		}
	}
	return false
}

// fieldColumn is the typed column of a key with a field index.
type fieldColumn struct {
	Key  string `json:"key"`
	Type string `json:"type"` // index.Type*
}

func (c fieldColumn) sqlType() string {
	switch c.Type {
	case index.TypeLong:
		return "BIGINT"
	case index.TypeDouble:
		return "DOUBLE"
	}
	return "VARCHAR"
}

// schema is an immutable snapshot of how a logstore's logs become rows.
// Writes are converted with the snapshot current when they were accepted;
// the writer re-derives typed columns if the schema changed meanwhile.
type schema struct {
	idx     *index.Config
	line    *query.Tokenizer // nil: no full-text index
	include map[string]bool
	exclude map[string]bool
	fields  []fieldColumn // table column order after the fixed columns
	byKey   map[string]int

	pqOnce sync.Once
	pq     *pqLayout
}

func newSchema(idx *index.Config, fields []fieldColumn) *schema {
	s := &schema{idx: idx, fields: fields, byKey: map[string]int{}}
	// No index at all: full text with the default tokens, so a logstore
	// created without an index is still searchable. An index without a
	// line section has no full-text index (as in the Log Service).
	if idx == nil || idx.Line != nil {
		s.line = query.LineTokenizer(idx)
	}
	if idx != nil && idx.Line != nil {
		s.include = setOf(idx.Line.IncludeKeys)
		s.exclude = setOf(idx.Line.ExcludeKeys)
	}
	for i, f := range fields {
		s.byKey[f.Key] = i
	}
	return s
}

func setOf(keys []string) map[string]bool {
	if len(keys) == 0 {
		return nil
	}
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// fieldIndex returns the field column of key. Most logs of a logstore
// have few distinct keys, so small key sets are scanned: cheaper than
// hashing each key.
func (s *schema) fieldIndex(key string) (int, bool) {
	if len(s.fields) <= 8 {
		for i := range s.fields {
			if s.fields[i].Key == key {
				return i, true
			}
		}
		return 0, false
	}
	i, ok := s.byKey[key]
	return i, ok
}

// inLine reports whether key's value is part of the full-text column.
func (s *schema) inLine(key string) bool {
	if s.include != nil {
		return s.include[key]
	}
	return !s.exclude[key]
}

// desiredFields returns the field columns an index asks for, keeping the
// order of current (columns are only ever appended to tables) and
// appending new keys sorted by name. Keys that clash with a fixed column
// are ignored.
func desiredFields(current []fieldColumn, idx *index.Config) []fieldColumn {
	if idx == nil {
		return nil
	}
	var out []fieldColumn
	for _, f := range current {
		if kc, ok := idx.Keys[f.Key]; ok && normType(kc.Type) == f.Type {
			out = append(out, f)
		}
	}
	var added []fieldColumn
	for k, kc := range idx.Keys {
		if isFixedColumn(k) || k == "" {
			continue
		}
		if !slices.ContainsFunc(out, func(f fieldColumn) bool { return f.Key == k }) {
			added = append(added, fieldColumn{Key: k, Type: normType(kc.Type)})
		}
	}
	slices.SortFunc(added, func(a, b fieldColumn) int { return strings.Compare(a.Key, b.Key) })
	return append(out, added...)
}

func normType(t string) string {
	switch strings.ToLower(t) {
	case index.TypeLong:
		return index.TypeLong
	case index.TypeDouble:
		return index.TypeDouble
	case index.TypeJSON:
		return index.TypeJSON
	}
	return index.TypeText
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// dayOf returns the UTC day number of a unix time.
func dayOf(unix int64) int32 {
	d := unix / 86400
	if unix < 0 && unix%86400 != 0 {
		d--
	}
	return int32(d)
}

func tableName(lsID int64, day int32) string {
	return fmt.Sprintf("ls%d_%s", lsID, time.Unix(int64(day)*86400, 0).UTC().Format("20060102"))
}

// parseTableName is the inverse of tableName.
func parseTableName(name string) (lsID int64, day int32, ok bool) {
	var date string
	if n, err := fmt.Sscanf(name, "ls%d_%s", &lsID, &date); n != 2 || err != nil {
		return 0, 0, false
	}
	t, err := time.Parse("20060102", date)
	if err != nil {
		return 0, 0, false
	}
	return lsID, dayOf(t.Unix()), true
}
