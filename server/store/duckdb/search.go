package duckdb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/query"
	"github.com/sluicelog/sluice/server/store"
)

// view is what a query needs of a logstore, snapshotted under the lock.
type view struct {
	ls     *logstore
	schema *schema
	days   []int32              // partitions overlapping the range, ascending
	segs   map[int32][]*segment // segments overlapping the range, by day
	dir    string               // data directory (Shared: the object cache)
	from   int64                // unix seconds, inclusive
	to     int64                // unix seconds, exclusive

	objects  Objects  // Shared: where fetch gets segments
	releases []func() // Shared: fetched segments to release
}

func (s *Store) view(ctx context.Context, project, logstore string, from, to time.Time) (*view, error) {
	f, t := from.Unix(), to.Unix()
	if to.Nanosecond() > 0 {
		t++
	}
	if s.sh != nil {
		return s.sharedViewOf(ctx, project, logstore, f, t)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ls := s.logstores[lsKey{project, logstore}]
	if ls == nil {
		return nil, fmt.Errorf("duckdb store: %s/%s: %w", project, logstore, store.ErrLogstoreNotFound)
	}
	v := &view{ls: ls, schema: ls.schema, from: f, to: t, segs: map[int32][]*segment{}, dir: s.cfg.DataDir}
	first := max(dayOf(f), retentionStart(ls.ttlDays, s.cfg.Now()))
	last := dayOf(t - 1)
	for d := range ls.days {
		if d >= first && d <= last && f < t {
			v.days = append(v.days, d)
		}
	}
	for d, segs := range ls.segs {
		if d < first || d > last || f >= t {
			continue
		}
		var in []*segment
		for _, sg := range segs {
			if sg.maxTime >= f && sg.minTime < t {
				in = append(in, sg)
			}
		}
		if len(in) == 0 {
			continue
		}
		v.segs[d] = in
		if !ls.days[d] {
			v.days = append(v.days, d)
		}
	}
	slices.Sort(v.days)
	return v, nil
}

// relation returns a FROM item over the given partitions (an empty
// relation with the right columns when there are none).
func (v *view) relation(days []int32) string {
	if len(days) == 0 {
		var b strings.Builder
		b.WriteString("(SELECT ")
		for i, c := range fixedColumns {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("NULL::" + c.typ + " AS " + c.name)
		}
		for _, f := range v.schema.fields {
			b.WriteString(", NULL::" + f.sqlType() + " AS " + quoteIdent(f.Key))
		}
		b.WriteString(" WHERE false)")
		return b.String()
	}
	var parts []string
	var segs []*segment
	for _, d := range days {
		if v.ls.days[d] {
			parts = append(parts, "SELECT * FROM "+quoteIdent(tableName(v.ls.id, d)))
		}
		segs = append(segs, v.segs[d]...)
	}
	if len(segs) > 0 {
		parts = append(parts, v.segmentSelect(segs, false))
	}
	return "(" + strings.Join(parts, " UNION ALL BY NAME ") + ")"
}

// segmentSelect reads segments with the view's columns: a field column a
// segment lacks is NULL, one written with another type is cast (NULL
// where the value does not convert). With refs, each row also has __src,
// its segment's id (the file's name), and __rn, its row number in the
// file.
func (v *view) segmentSelect(segs []*segment, refs bool) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	if refs {
		b.WriteString("CAST(parse_filename(filename, true) AS BIGINT) AS __src, file_row_number AS __rn, ")
	}
	for i, c := range fixedColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.name)
	}
	for _, f := range v.schema.fields {
		present, same := false, true
		for _, sg := range segs {
			if t, ok := sg.fieldType(f.Key); ok {
				present = true
				same = same && t == f.Type
			}
		}
		col := quoteIdent(f.Key)
		switch {
		case !present:
			b.WriteString(", NULL::" + f.sqlType() + " AS " + col)
		case same:
			b.WriteString(", " + col)
		default:
			b.WriteString(", TRY_CAST(" + col + " AS " + f.sqlType() + ") AS " + col)
		}
	}
	paths := make([]string, len(segs))
	for i, sg := range segs {
		paths[i] = segmentPath(v.dir, v.ls.id, sg.id)
	}
	b.WriteString(" FROM " + readParquet(paths, refs))
	return b.String()
}

// sqlColumns is what SQL sees of a log, as in the Log Service: __time__,
// __source__, __topic__ and the field-indexed keys. The storage columns
// (__contents__, __line__, __tags__, __time_ns__, __receive_time__) stay
// internal, so select * returns the log's keys. An indexed tag
// ("__tag__:__hostname__") is read from the group's tags, and
// "__tag__:__receive_time__" is the receive time.
func (v *view) sqlColumns() string {
	var b strings.Builder
	b.WriteString(ColTime + ", " + ColSource + ", " + ColTopic)
	for _, f := range v.schema.fields {
		b.WriteString(", ")
		name, isTag := strings.CutPrefix(f.Key, query.TagPrefix)
		if !isTag {
			b.WriteString(quoteIdent(f.Key))
			continue
		}
		val := "json_extract_string(" + ColTags + ", " + quoteString(jsonKeyPath(name)) + ")"
		if name == "__receive_time__" {
			val = "CAST(" + ColReceiveTime + " AS VARCHAR)"
		}
		if t := f.sqlType(); t != "VARCHAR" {
			val = "TRY_CAST(" + val + " AS " + t + ")"
		}
		b.WriteString(val + " AS " + quoteIdent(f.Key))
	}
	return b.String()
}

// quoteString is s as a SQL string literal.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// filter returns the WHERE clause: time range, topic and the compiled
// search.
func (v *view) filter(topic string, where query.Expr) (string, []any) {
	sql := ColTime + " >= ? AND " + ColTime + " < ?"
	args := []any{v.from, v.to}
	if topic != "" {
		sql += " AND " + ColTopic + " = ?"
		args = append(args, topic)
	}
	if where.SQL != "" {
		sql += " AND (" + where.SQL + ")"
		args = append(args, where.Args...)
	}
	return sql, args
}

// compiled is a parsed query with its search part compiled for a schema.
type compiled struct {
	q     *query.Query
	where query.Expr
}

func invalid(err error) error {
	if errors.Is(err, store.ErrInvalidQuery) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrInvalidQuery, err)
}

func compile(text string, sch *schema, lim query.Limits) (*compiled, error) {
	if err := lim.CheckLength(text); err != nil {
		return nil, invalid(err)
	}
	q, err := query.Parse(text)
	if err != nil {
		return nil, invalid(err)
	}
	where, err := query.CompileSearch(q.Search, sch.querySchema())
	if err != nil {
		return nil, invalid(err)
	}
	return &compiled{q: q, where: where}, nil
}

// querySchema tells the query compiler how this store lays out rows:
// typed columns for field-indexed keys, tags as a JSON object.
func (s *schema) querySchema() query.Schema {
	qs := query.Schema{Index: s.idx, Key: s.keyColumns}
	if s.line != nil {
		qs.Line = query.Expr{SQL: ColLine}
	}
	return qs
}

func (s *schema) keyColumns(key string) (query.KeyColumns, error) {
	switch key {
	case ColTime, ColTopic, ColSource:
		return query.DefaultKey(s.idx, key), nil
	}
	if name, ok := strings.CutPrefix(key, query.TagPrefix); ok {
		return query.KeyColumns{Value: query.Expr{SQL: "json_extract_string(" + ColTags + ", ?)", Args: []any{jsonKeyPath(name)}}, Type: index.TypeText}, nil
	}
	if i, ok := s.byKey[key]; ok {
		col := quoteIdent(key)
		switch t := s.fields[i].Type; t {
		case index.TypeLong, index.TypeDouble:
			return query.KeyColumns{Value: query.Expr{SQL: "CAST(" + col + " AS VARCHAR)"}, Number: query.Expr{SQL: col}, Type: t}, nil
		default:
			return query.KeyColumns{Value: query.Expr{SQL: col}, Type: t}, nil
		}
	}
	// "a.b" under a json-indexed key "a".
	for parent, rest, ok := strings.Cut(key, "."); ok; {
		if i, found := s.byKey[parent]; found && s.fields[i].Type == index.TypeJSON {
			return query.KeyColumns{Value: query.Expr{SQL: "json_extract_string(" + quoteIdent(parent) + ", ?)", Args: []any{query.JSONPath(rest)}}}, nil
		}
		var more string
		more, rest, ok = strings.Cut(rest, ".")
		parent += "." + more
	}
	return query.KeyColumns{}, fmt.Errorf("key %q has no field index: add it to the logstore's index to search it", key)
}

func jsonKeyPath(name string) string {
	return `$."` + strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), `"`, `\"`) + `"`
}

// Search implements store.Store.
func (s *Store) Search(ctx context.Context, project, logstore string, req store.SearchRequest) (*store.SearchResult, error) {
	return bounded(ctx, s, project, func(ctx context.Context) (*store.SearchResult, error) {
		return s.search(ctx, project, logstore, req)
	})
}

func (s *Store) search(ctx context.Context, project, logstore string, req store.SearchRequest) (*store.SearchResult, error) {
	start := time.Now()
	v, err := s.view(ctx, project, logstore, req.From, req.To)
	if err != nil {
		return nil, err
	}
	if s.sh == nil {
		if err := s.waitLoaded(ctx, v.ls); err != nil {
			return nil, err
		}
		// Loading may have created partitions.
		if v, err = s.view(ctx, project, logstore, req.From, req.To); err != nil {
			return nil, err
		}
	}
	defer v.close()
	c, err := compile(req.Query, v.schema, s.cfg.QueryLimits)
	if err != nil {
		return nil, err
	}
	s.prune(v, c, project, logstore, req.Topic)
	var res *store.SearchResult
	if c.q.HasSQL {
		res, err = s.runSQL(ctx, v, logstore, req.Topic, c)
	} else {
		res, err = s.runSearch(ctx, v, req, c)
	}
	if err != nil {
		return nil, err
	}
	res.WhereQuery, res.AggQuery = c.q.SearchText, c.q.SQL
	res.Count = len(res.Rows)
	res.Elapsed = time.Since(start)
	return res, nil
}

var resultCols = strings.Join([]string{ColTime, ColTimeNs, ColTopic, ColSource, ColTags, ColReceiveTime, ColContents}, ", ")

// runSQL runs an analysis statement over the filtered logs. Values are
// rendered as strings (SLS returns every value as a JSON string); NULL
// becomes "null" as in the Log Service.
func (s *Store) runSQL(ctx context.Context, v *view, logstore, topic string, c *compiled) (*store.SearchResult, error) {
	if err := v.fetch(ctx, v.days); err != nil {
		return nil, err
	}
	where, args := v.filter(topic, c.where)
	stmt, err := c.q.SandboxSQL(query.SandboxOptions{
		Logstore:     logstore,
		Relation:     "log",
		Source:       query.Expr{SQL: "SELECT " + v.sqlColumns() + " FROM " + v.relation(v.days) + " WHERE " + where, Args: args},
		DefaultLimit: 100,
		Limits:       s.cfg.QueryLimits,
	})
	if err != nil {
		return nil, invalid(err)
	}
	rows, err := s.db.QueryContext(ctx, stmt.SQL, stmt.Args...)
	if err != nil {
		return nil, s.sqlErr(err, stmt)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, s.sqlErr(err, stmt)
	}
	res := &store.SearchResult{HasSQL: true}
	for _, ct := range cts {
		res.Columns = append(res.Columns, store.Column{Name: ct.Name(), Type: strings.ToLower(ct.DatabaseTypeName())})
		res.Keys = append(res.Keys, ct.Name())
	}
	vals := make([]any, len(cts))
	ptrs := make([]any, len(cts))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var size int64
	for rows.Next() {
		if len(res.Rows) == s.cfg.MaxResultRows {
			return nil, fmt.Errorf("%w: the SQL result has more than %d rows (query limit max-result-rows): add a LIMIT or aggregate (GROUP BY)", store.ErrQueryLimit, s.cfg.MaxResultRows)
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("duckdb store: read row: %w", err)
		}
		row := make([]store.Field, len(cts))
		for i, val := range vals {
			row[i] = store.Field{Key: cts[i].Name(), Value: formatValue(val)}
			size += int64(len(row[i].Value))
		}
		if size > s.cfg.MaxResultBytes {
			return nil, fmt.Errorf("%w: the SQL result is larger than %d bytes (query limit max-result-bytes): add a LIMIT, aggregate or select fewer or shorter values", store.ErrQueryLimit, s.cfg.MaxResultBytes)
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, s.sqlErr(err, stmt)
	}
	res.ProcessedRows = int64(len(res.Rows))
	return res, nil
}

func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.000")
	}
	return fmt.Sprint(v)
}

// userErrorKinds are the DuckDB error types that are the query's fault
// (a 400), not the store's.
var userErrorKinds = []string{"Parser Error", "Binder Error", "Conversion Error", "Invalid Input Error", "Catalog Error",
	"Permission Error", "Out of Range Error", "Not implemented Error", "Invalid Type Error", "Syntax Error"}

// sqlErr is queryErr for a statement SandboxSQL made of the user's SQL.
// DuckDB quotes the statement around the error; that is the store's SQL
// (segment files, the time and search filter, an added LIMIT), not the
// user's, so only DuckDB's message is kept, without its error type. When
// DuckDB points at a place in the user's part of the statement, the error
// is a *query.Error ("SQL error at <byte>: ...") at that place of the
// query text, as syntax errors are, so the console can show it there.
func (s *Store) sqlErr(err error, stmt query.Expr) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	raw := err.Error()
	if lerr := s.limitErr(raw); lerr != nil {
		return lerr
	}
	msg, offs := splitDuckError(raw, stmt.SQL)
	if !slices.ContainsFunc(userErrorKinds, func(k string) bool { return strings.Contains(raw, k) }) {
		return fmt.Errorf("duckdb store: query: %s", msg)
	}
	for _, off := range offs {
		if pos, ok := stmt.QueryPos(off); ok {
			return fmt.Errorf("%w: %w", store.ErrInvalidQuery, &query.Error{Pos: pos, Msg: msg, Kind: "SQL error"})
		}
	}
	return fmt.Errorf("%w: %s", store.ErrInvalidQuery, msg)
}

var duckErrorKind = regexp.MustCompile(`^(?:[A-Z][a-z]+ )+Error: `)

// splitDuckError splits a DuckDB error message, "<Type> Error: <message>"
// followed by "LINE n: <excerpt of the statement>" and a line with a
// caret under the error, into the message (one line, without the type)
// and the byte offsets in stmt where the caret may point (the excerpt can
// occur more than once).
func splitDuckError(raw, stmt string) (msg string, offs []int) {
	head, tail, located := strings.Cut(raw, "\nLINE ")
	msg = duckErrorKind.ReplaceAllString(strings.TrimSpace(head), "")
	msg = strings.Join(strings.Fields(msg), " ")
	if !located {
		return msg, nil
	}
	// tail: "1: <excerpt>\n<spaces>^"
	excerptLine, caretLine, _ := strings.Cut(tail, "\n")
	num, excerpt, ok := strings.Cut(excerptLine, ": ")
	caret := strings.IndexByte(caretLine, '^')
	if !ok || caret < 0 {
		return msg, nil
	}
	// The caret line is indented past "LINE <n>: " and counts display
	// columns (one per character here), not bytes.
	col := caret - len("LINE ") - len(num) - len(": ")
	if strings.HasPrefix(excerpt, "...") {
		excerpt, col = excerpt[3:], col-3
	}
	excerpt = strings.TrimSuffix(excerpt, "...")
	if col < 0 || excerpt == "" {
		return msg, nil
	}
	at := len(excerpt)
	for i := range excerpt { // byte offset of the col-th character
		if col == 0 {
			at = i
			break
		}
		col--
	}
	for from := 0; ; {
		i := strings.Index(stmt[from:], excerpt)
		if i < 0 {
			break
		}
		offs = append(offs, from+i+at)
		from += i + 1
	}
	return msg, offs
}

// Histogram implements store.Store.
func (s *Store) Histogram(ctx context.Context, project, logstore string, req store.HistogramRequest) ([]store.Bucket, error) {
	return bounded(ctx, s, project, func(ctx context.Context) ([]store.Bucket, error) {
		return s.histogram(ctx, project, logstore, req)
	})
}

func (s *Store) histogram(ctx context.Context, project, logstore string, req store.HistogramRequest) ([]store.Bucket, error) {
	v, err := s.view(ctx, project, logstore, req.From, req.To)
	if err != nil {
		return nil, err
	}
	if s.sh == nil {
		if err := s.waitLoaded(ctx, v.ls); err != nil {
			return nil, err
		}
		if v, err = s.view(ctx, project, logstore, req.From, req.To); err != nil {
			return nil, err
		}
	}
	defer v.close()
	c, err := compile(req.Query, v.schema, s.cfg.QueryLimits)
	if err != nil {
		return nil, err
	}
	if c.q.HasSQL {
		return nil, fmt.Errorf("%w: histograms take a search query without an analysis (| SQL) part", store.ErrInvalidQuery)
	}
	s.prune(v, c, project, logstore, req.Topic)
	span := v.to - v.from
	if span <= 0 {
		return nil, nil
	}
	interval := req.Interval
	if interval <= 0 {
		interval = query.HistogramInterval(time.Unix(v.from, 0), time.Unix(v.to, 0))
	}
	step := max(1, int64((interval+time.Second-1)/time.Second))
	n := (span + step - 1) / step
	buckets := make([]store.Bucket, n)
	for i := range buckets {
		f := v.from + int64(i)*step
		buckets[i] = store.Bucket{From: time.Unix(f, 0), To: time.Unix(min(f+step, v.to), 0)}
	}
	if len(v.days) == 0 {
		return buckets, nil
	}
	if err := v.fetch(ctx, v.days); err != nil {
		return nil, err
	}
	where, args := v.filter(req.Topic, c.where)
	q := "SELECT (" + ColTime + " - ?) // ? AS b, count(*) FROM " + v.relation(v.days) + " WHERE " + where + " GROUP BY b"
	rows, err := s.db.QueryContext(ctx, q, append([]any{v.from, step}, args...)...)
	if err != nil {
		return nil, s.queryErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b, cnt int64
		if err := rows.Scan(&b, &cnt); err != nil {
			return nil, fmt.Errorf("duckdb store: read histogram: %w", err)
		}
		if b >= 0 && b < n {
			buckets[b].Count = cnt
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.queryErr(err)
	}
	return buckets, nil
}
