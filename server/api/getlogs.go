package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/store"
)

// flexInt accepts a JSON number or a string holding one (clients differ).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fl, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return errors.New("want an integer, got " + string(b))
		}
		n = int64(fl)
	}
	*f = flexInt(n)
	return nil
}

// flexBool accepts true/false or "true"/"false".
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := strconv.ParseBool(s)
	if s == "" || s == "null" {
		v, err = false, nil
	}
	if err != nil {
		return errors.New("want a boolean, got " + string(b))
	}
	*f = flexBool(v)
	return nil
}

// getLogsBody is the JSON body of POST /logstores/{ls}/logs.
type getLogsBody struct {
	From    flexInt  `json:"from"`
	To      flexInt  `json:"to"`
	Topic   string   `json:"topic"`
	Query   string   `json:"query"`
	Line    *flexInt `json:"line"`
	Offset  flexInt  `json:"offset"`
	Reverse flexBool `json:"reverse"`
	FromNs  flexInt  `json:"fromNs"`
	ToNs    flexInt  `json:"toNs"`
}

const maxLines = 100

func searchRequest(from, to, fromNs, toNs int64, topic, query string, line *int64, offset int64, reverse bool) (store.SearchRequest, error) {
	if to < from {
		return store.SearchRequest{}, protocol.Errorf(protocol.CodeParameterInvalid, "from %d is after to %d", from, to)
	}
	if fromNs < 0 || fromNs >= 1e9 || toNs < 0 || toNs >= 1e9 {
		return store.SearchRequest{}, protocol.NewError(protocol.CodeParameterInvalid, "fromNs and toNs must be in [0, 1e9)")
	}
	n := int64(maxLines)
	if line != nil {
		n = *line
	}
	if n < 0 || n > maxLines {
		return store.SearchRequest{}, protocol.Errorf(protocol.CodeParameterInvalid, "line %d must be between 0 and %d: page with offset", n, maxLines)
	}
	if offset < 0 {
		return store.SearchRequest{}, protocol.Errorf(protocol.CodeParameterInvalid, "offset %d must not be negative", offset)
	}
	return store.SearchRequest{
		From:    time.Unix(from, fromNs),
		To:      time.Unix(to, toNs),
		Topic:   topic,
		Query:   query,
		Line:    int(n),
		Offset:  int(offset),
		Reverse: reverse,
	}, nil
}

// requireIndex returns IndexConfigNotExist when the logstore has no index
// (the service refuses queries then).
func (a *API) requireIndex(ctx context.Context, q *request) error {
	ls := q.vars["logstore"]
	if _, err := a.cfg.Meta.GetIndex(ctx, q.project, ls); err != nil {
		var nf *meta.NotFoundError
		if errors.As(err, &nf) && nf.Kind == meta.KindIndex {
			return protocol.Errorf(protocol.CodeIndexConfigNotExist,
				"logstore %q has no index: create one (POST /logstores/%s/index) before querying", ls, ls)
		}
		return a.metaErr(err)
	}
	return nil
}

// getLogs serves POST /logstores/{ls}/logs (GetLogsV2/V3).
func (a *API) getLogs(ctx context.Context, q *request) error {
	var b getLogsBody
	if err := a.decodeJSON(q, &b); err != nil {
		return err
	}
	var line *int64
	if b.Line != nil {
		n := int64(*b.Line)
		line = &n
	}
	req, err := searchRequest(int64(b.From), int64(b.To), int64(b.FromNs), int64(b.ToNs), b.Topic, b.Query, line, int64(b.Offset), bool(b.Reverse))
	if err != nil {
		return err
	}
	res, err := a.search(ctx, q, req)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(`{"meta":`)
	m, err := json.Marshal(responseMeta(res))
	if err != nil {
		return err
	}
	buf.Write(m)
	buf.WriteString(`,"data":`)
	writeRows(&buf, res.Rows)
	buf.WriteString("}")
	return a.writeMaybeLZ4(q, buf.Bytes())
}

// lz4ReplyMin is the reply size from which GetLogs compresses for clients
// that accept lz4 (the Go SDK sends Accept-Encoding: lz4).
const lz4ReplyMin = 1 << 10

// writeMaybeLZ4 sends a JSON reply, as a raw LZ4 block with
// x-log-compresstype and x-log-bodyrawsize when the client accepts lz4 and
// the reply is large enough to gain; otherwise plain with neither header.
func (a *API) writeMaybeLZ4(q *request, b []byte) error {
	if len(b) < lz4ReplyMin || !acceptsLZ4(q.r.Header.Values("Accept-Encoding")) {
		return writeRawJSON(q, b)
	}
	out, err := protocol.AppendCompressed(nil, b, protocol.CompressLZ4)
	if err != nil {
		return writeRawJSON(q, b)
	}
	h := q.w.Header()
	h.Set("Content-Type", protocol.ContentTypeJSON)
	h.Set(protocol.HeaderCompressType, "lz4")
	h.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(b)))
	h.Set("Content-Length", strconv.Itoa(len(out)))
	q.w.WriteHeader(http.StatusOK)
	_, _ = q.w.Write(out)
	return nil
}

func acceptsLZ4(values []string) bool {
	for _, v := range values {
		for _, enc := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(enc), ";")
			if strings.EqualFold(name, "lz4") {
				return true
			}
		}
	}
	return false
}

func (a *API) search(ctx context.Context, q *request, req store.SearchRequest) (*store.SearchResult, error) {
	if err := a.requireIndex(ctx, q); err != nil {
		return nil, err
	}
	qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	defer cancel()
	res, err := a.cfg.Logs.Search(qctx, q.project, q.vars["logstore"], req)
	if err != nil {
		return nil, a.queryErr(ctx, qctx, err)
	}
	if res.Count == 0 {
		res.Count = len(res.Rows)
	}
	if !res.HasSQL {
		// Rows with a pack id get the __pack_meta__ GetContextLogs takes.
		ls, err := a.cfg.Meta.GetLogstore(ctx, q.project, q.vars["logstore"])
		if err != nil {
			return nil, a.metaErr(err)
		}
		addPackMeta(res.Rows, ls.ShardCount)
	}
	return res, nil
}

// getLogsMeta is the "meta" object of a GetLogs response; every key the
// SDKs read is present.
type getLogsMeta struct {
	Progress           string   `json:"progress"`
	AggQuery           string   `json:"aggQuery"`
	WhereQuery         string   `json:"whereQuery"`
	HasSQL             bool     `json:"hasSQL"`
	ProcessedRows      int64    `json:"processedRows"`
	ElapsedMillisecond int64    `json:"elapsedMillisecond"`
	CPUSec             float64  `json:"cpuSec"`
	CPUCores           float64  `json:"cpuCores"`
	Limited            int64    `json:"limited"`
	Count              int64    `json:"count"`
	ProcessedBytes     int64    `json:"processedBytes"`
	TelemetryType      string   `json:"telementryType"` // sic: the SDK's spelling
	PowerSQL           bool     `json:"powerSql"`
	InsertedSQL        string   `json:"insertedSQL"`
	Keys               []string `json:"keys"`
	Terms              []any    `json:"terms"`
	IsAccurate         bool     `json:"isAccurate"`
	ColumnTypes        []string `json:"columnTypes"`
}

func responseMeta(res *store.SearchResult) getLogsMeta {
	m := getLogsMeta{
		Progress:           "Complete",
		AggQuery:           res.AggQuery,
		WhereQuery:         res.WhereQuery,
		HasSQL:             res.HasSQL,
		ProcessedRows:      res.ProcessedRows,
		ElapsedMillisecond: res.Elapsed.Milliseconds(),
		Count:              int64(res.Count),
		TelemetryType:      "logging",
		Keys:               res.Keys,
		Terms:              []any{},
		IsAccurate:         true,
		ColumnTypes:        []string{},
	}
	if m.Keys == nil {
		m.Keys = []string{}
	}
	if res.HasSQL {
		m.Keys = m.Keys[:0:0]
		for _, c := range res.Columns {
			m.Keys = append(m.Keys, c.Name)
			m.ColumnTypes = append(m.ColumnTypes, c.Type)
		}
	}
	return m
}

// writeRows writes rows as a JSON array of objects whose values are all
// strings (the SDKs decode into map[string]string), keeping field order.
func writeRows(buf *bytes.Buffer, rows [][]store.Field) {
	buf.WriteByte('[')
	for i, row := range rows {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('{')
		seen := make(map[string]struct{}, len(row))
		first := true
		for _, f := range row {
			if _, dup := seen[f.Key]; dup {
				continue
			}
			seen[f.Key] = struct{}{}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			writeJSONString(buf, f.Key)
			buf.WriteByte(':')
			writeJSONString(buf, f.Value)
		}
		buf.WriteByte('}')
	}
	buf.WriteByte(']')
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals (invalid UTF-8 becomes U+FFFD)
	buf.Write(b)
}

func queryInt(q *request, name string, def int64) (int64, error) {
	s := q.query(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, protocol.Errorf(protocol.CodeParameterInvalid, "%s=%q is not an integer", name, s)
	}
	return n, nil
}

// getLogsLegacy serves GET /logstores/{ls}?type=log: a JSON array, the
// meta in headers.
func (a *API) getLogsLegacy(ctx context.Context, q *request) error {
	var from, to, offset, fromNs, toNs int64
	var err error
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"from", &from}, {"to", &to}, {"offset", &offset}, {"fromNs", &fromNs}, {"toNs", &toNs}} {
		if *p.dst, err = queryInt(q, p.name, 0); err != nil {
			return err
		}
	}
	var line *int64
	if q.query("line") != "" {
		n, err := queryInt(q, "line", maxLines)
		if err != nil {
			return err
		}
		line = &n
	}
	reverse, _ := strconv.ParseBool(q.query("reverse"))
	req, err := searchRequest(from, to, fromNs, toNs, q.query("topic"), q.query("query"), line, offset, reverse)
	if err != nil {
		return err
	}
	res, err := a.search(ctx, q, req)
	if err != nil {
		return err
	}
	m := responseMeta(res)
	info, _ := json.Marshal(map[string]any{"keys": m.Keys, "terms": m.Terms, "limited": 0})
	h := q.w.Header()
	h.Set(protocol.HeaderProgress, m.Progress)
	h.Set(protocol.HeaderCount, strconv.FormatInt(m.Count, 10))
	h.Set(protocol.HeaderProcessedRows, strconv.FormatInt(m.ProcessedRows, 10))
	h.Set(protocol.HeaderElapsedMillisecond, strconv.FormatInt(m.ElapsedMillisecond, 10))
	h.Set(protocol.HeaderHasSQL, strconv.FormatBool(m.HasSQL))
	h.Set(protocol.HeaderWhereQuery, m.WhereQuery)
	h.Set(protocol.HeaderAggQuery, m.AggQuery)
	h.Set(protocol.HeaderQueryInfo, string(info))
	var buf bytes.Buffer
	writeRows(&buf, res.Rows)
	return writeRawJSON(q, buf.Bytes())
}

type histogramJSON struct {
	From     int64  `json:"from"`
	To       int64  `json:"to"`
	Count    int64  `json:"count"`
	Progress string `json:"progress"`
}

// getHistograms serves GET /logstores/{ls}?type=histogram.
func (a *API) getHistograms(ctx context.Context, q *request) error {
	from, err := queryInt(q, "from", 0)
	if err != nil {
		return err
	}
	to, err := queryInt(q, "to", 0)
	if err != nil {
		return err
	}
	interval, err := queryInt(q, "interval", 0)
	if err != nil {
		return err
	}
	if to < from {
		return protocol.Errorf(protocol.CodeParameterInvalid, "from %d is after to %d", from, to)
	}
	if interval < 0 {
		return protocol.Errorf(protocol.CodeParameterInvalid, "interval %d must not be negative", interval)
	}
	if err := a.requireIndex(ctx, q); err != nil {
		return err
	}
	query := q.query("query")
	qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	defer cancel()
	buckets, err := a.cfg.Logs.Histogram(qctx, q.project, q.vars["logstore"], store.HistogramRequest{
		From: time.Unix(from, 0), To: time.Unix(to, 0), Topic: q.query("topic"), Query: query,
		Interval: time.Duration(interval) * time.Second,
	})
	if err != nil {
		return a.queryErr(ctx, qctx, err)
	}
	out := make([]histogramJSON, 0, len(buckets))
	var total int64
	for _, b := range buckets {
		out = append(out, histogramJSON{From: b.From.Unix(), To: b.To.Unix(), Count: b.Count, Progress: "Complete"})
		total += b.Count
	}
	h := q.w.Header()
	h.Set(protocol.HeaderProgress, "Complete")
	h.Set(protocol.HeaderCount, strconv.FormatInt(total, 10))
	return writeJSON(q, out)
}

// CodeQueryTimeout answers a query cancelled at Config.QueryTimeout.
const CodeQueryTimeout protocol.ErrorCode = "QueryTimeout"

// queryErr maps a Search/Histogram error; a query that hit the server's
// time limit (not the client's disconnect) is a client error: retrying
// the same query would time out again.
func (a *API) queryErr(ctx, qctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(qctx.Err(), context.DeadlineExceeded) {
		return &protocol.Error{HTTPStatus: http.StatusBadRequest, Code: CodeQueryTimeout,
			Message: fmt.Sprintf("query ran longer than the server's %s limit: narrow the time range or the query", a.cfg.QueryTimeout), Err: err}
	}
	return storeErr(err)
}
