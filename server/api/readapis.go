package api

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/store"
)

// Read APIs beyond GetLogs: ListTopics and GetProjectLogs.

// allTime is the time range of queries that name none (topics, project
// SQL): every log up to a day ahead of now.
func (a *API) allTime() (time.Time, time.Time) {
	return time.Unix(0, 0), a.now().Add(24 * time.Hour)
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// listTopics serves ListTopics (GET /logstores/{ls}?type=topic&token&line):
// the logstore's distinct topics in byte order after token, at most line
// (default and max 1000) of them; x-log-nexttoken is the last one when
// the page is full.
func (a *API) listTopics(ctx context.Context, q *request) error {
	ls := q.vars["logstore"]
	if _, err := a.cfg.Meta.GetLogstore(ctx, q.project, ls); err != nil {
		return a.metaErr(err)
	}
	line, err := queryInt(q, "line", 1000)
	if err != nil {
		return err
	}
	if line < 1 || line > 1000 {
		return protocol.Errorf(protocol.CodeParameterInvalid, "line %d must be 1 to 1000", line)
	}
	token := q.query("token")
	from, to := a.allTime()
	qctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	defer cancel()
	where := ""
	if token != "" {
		where = " where __topic__ > " + sqlString(token)
	}
	res, err := a.cfg.Logs.Search(qctx, q.project, ls, store.SearchRequest{From: from, To: to,
		Query: "* | select __topic__ from log" + where + " group by __topic__ order by __topic__ limit " + strconv.FormatInt(line, 10)})
	if err != nil {
		return a.queryErr(ctx, qctx, err)
	}
	topics := make([]string, 0, len(res.Rows))
	for _, row := range res.Rows {
		if len(row) > 0 {
			topics = append(topics, row[0].Value)
		}
	}
	h := q.w.Header()
	h.Set(protocol.HeaderCount, strconv.Itoa(len(topics)))
	next := ""
	if int64(len(topics)) == line {
		next = topics[len(topics)-1]
	}
	h.Set("x-log-nexttoken", next)
	return writeJSON(q, topics)
}

// fromTable finds the table names after FROM and JOIN.
var fromTable = regexp.MustCompile(`(?i)\b(?:from|join)\s+(?:"((?:[^"]|"")+)"|([a-z0-9][a-z0-9_-]*))`)

// getProjectLogs serves GetProjectLogs (GET /logs?query=<SQL>): SQL over
// one logstore of the project named in its FROM (with its time range in
// the WHERE clause, __time__ or __date__, as the service requires), rows
// as a JSON array.
func (a *API) getProjectLogs(ctx context.Context, q *request) error {
	sql := strings.TrimSpace(q.query("query"))
	if sql == "" {
		return protocol.NewError(protocol.CodeParameterInvalid, "query is required: an SQL statement such as select count(*) from <logstore> where __time__ > <unix seconds>")
	}
	ls := ""
	for _, m := range fromTable.FindAllStringSubmatch(sql, -1) {
		name := m[2]
		if m[1] != "" {
			name = strings.ReplaceAll(m[1], `""`, `"`)
		}
		if _, err := a.cfg.Meta.GetLogstore(ctx, q.project, name); err != nil {
			continue // a CTE, a subquery alias or a table the sandbox refuses
		}
		if ls != "" && ls != name {
			return protocol.Errorf(protocol.CodeParameterInvalid, "the query reads logstores %q and %q: this server runs project SQL over one logstore at a time", ls, name)
		}
		ls = name
	}
	if ls == "" {
		return protocol.Errorf(protocol.CodeParameterInvalid, "the query names no logstore of project %q after FROM", q.project)
	}
	q.vars["logstore"] = ls
	from, to := a.allTime()
	res, err := a.search(ctx, q, store.SearchRequest{From: from, To: to, Query: "* | " + sql})
	if err != nil {
		return err
	}
	h := q.w.Header()
	h.Set(protocol.HeaderProgress, "Complete")
	h.Set(protocol.HeaderCount, strconv.Itoa(res.Count))
	h.Set(protocol.HeaderProcessedRows, strconv.FormatInt(res.ProcessedRows, 10))
	h.Set(protocol.HeaderElapsedMillisecond, strconv.FormatInt(res.Elapsed.Milliseconds(), 10))
	var buf bytes.Buffer
	writeRows(&buf, res.Rows)
	return writeRawJSON(q, buf.Bytes())
}
