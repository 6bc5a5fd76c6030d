package console

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/query"
)

// Live tail. Polling a search for "logs newer than the newest shown"
// skips lines: logs arrive late and out of time order, and a page holds
// 100 (at 100 lines/s, 957 of 1,557 lines never showed). The tail reads
// what was received instead, as the Log Service console's LiveTail does:
// each shard of the logstore is an ordered sequence of the log groups as
// received, read by cursor (GetCursor, PullLogs — the API's own calls,
// with the session's key), so every line written after the tail started
// is seen exactly once, in the order received. The search is applied here
// to the pulled logs with query.Matcher, which matches exactly what the
// store's search would.

const (
	// tailGroups is how many log groups one call reads from a shard.
	tailGroups = 200
	// tailRows bounds the matching rows one call returns; the cursor
	// stops after the group that reached it, and the page asks again.
	tailRows = 2000
)

type tailRequest struct {
	Project  string `json:"project"`
	Logstore string `json:"logstore"`
	Query    string `json:"query"`
	// Cursors are the shards' next cursors from the previous reply; none
	// on the first call, which starts at the end of every shard, or with
	// Since at the first log group received at or after that unix time
	// (the page asks from just before the search it shows, so nothing
	// received in between is missed).
	Cursors map[string]string `json:"cursors"`
	Since   int64             `json:"since"`
}

type tailReply struct {
	Cursors map[string]string `json:"cursors"`
	// Rows are the matching logs read, oldest first, as GetLogs rows.
	Rows []row `json:"rows"`
	// Scanned counts the logs read (matching or not).
	Scanned int `json:"scanned"`
	// More: a shard has more to read now; ask again without waiting.
	More bool `json:"more"`
}

func (c *Console) tail(w http.ResponseWriter, r *http.Request, sess *session) {
	var req tailRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxConsoleBody)).Decode(&req); err != nil {
		writeErr(w, errorf(http.StatusBadRequest, "PostBodyInvalid", "body must be JSON {project, logstore, query, cursors}: %v", err))
		return
	}
	project := req.Project
	q, err := query.Parse(req.Query)
	if err != nil {
		writeErr(w, errorf(http.StatusBadRequest, "ParameterInvalid", "%v", err))
		return
	}
	if q.HasSQL {
		writeErr(w, errorf(http.StatusBadRequest, "ParameterInvalid", "live tail follows a search: remove the | SQL part"))
		return
	}
	ls := "/logstores/" + url.PathEscape(req.Logstore)
	var idx *index.Config
	if err := c.apiJSON(r, sess, project, ls+"/index", &idx); err != nil {
		writeErr(w, err)
		return
	}
	m, err := query.NewMatcher(q.Search, idx)
	if err != nil {
		writeErr(w, errorf(http.StatusBadRequest, "ParameterInvalid", "%v", err))
		return
	}
	var shards []struct {
		ID int `json:"shardID"`
	}
	if err := c.apiJSON(r, sess, project, ls+"/shards", &shards); err != nil {
		writeErr(w, err)
		return
	}
	out := tailReply{Cursors: map[string]string{}, Rows: []row{}}
	type tailRow struct {
		t, ns int64
		row   row
	}
	var rows []tailRow
	for _, sh := range shards {
		id := strconv.Itoa(sh.ID)
		path := ls + "/shards/" + id
		cur, ok := req.Cursors[id]
		if !ok {
			// A shard new since the last call (shardCount grew) is read
			// from its beginning; on the first call, from the end.
			from := "end"
			switch {
			case req.Cursors != nil:
				from = "begin"
			case req.Since > 0:
				from = strconv.FormatInt(req.Since, 10)
			}
			var got struct {
				Cursor string `json:"cursor"`
			}
			if err := c.apiJSON(r, sess, project, path+"?type=cursor&from="+from, &got); err != nil {
				writeErr(w, err)
				return
			}
			out.Cursors[id] = got.Cursor
			if req.Cursors == nil && req.Since <= 0 {
				continue
			}
			cur = got.Cursor
		}
		start, err := protocol.DecodeCursor(cur)
		if err != nil {
			writeErr(w, errorf(http.StatusBadRequest, "InvalidCursor", "shard %s: %v", id, err))
			return
		}
		if len(rows) >= tailRows {
			// The reply is full: this shard waits for the next call.
			out.Cursors[id] = cur
			out.More = true
			continue
		}
		groups, err := c.pull(r, sess, project, path, cur)
		if err != nil {
			writeErr(w, err)
			return
		}
		used := 0
		for gi := range groups {
			if len(rows) >= tailRows {
				break
			}
			g := &groups[gi]
			used++
			for li := range g.Logs {
				l := &g.Logs[li]
				out.Scanned++
				if !m.Match(matchLog(g, l)) {
					continue
				}
				rows = append(rows, tailRow{t: int64(l.Time), ns: int64(l.TimeNs), row: rowOf(g, l)})
			}
		}
		out.Cursors[id] = protocol.EncodeCursor(start + int64(used))
		if used == tailGroups || used < len(groups) {
			out.More = true
		}
	}
	// Oldest first by log time; a stable sort keeps the received order of
	// equal times.
	slices.SortStableFunc(rows, func(a, b tailRow) int {
		return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.ns, b.ns))
	})
	for _, tr := range rows {
		out.Rows = append(out.Rows, tr.row)
	}
	writeJSON(w, http.StatusOK, out)
}

// pull reads up to tailGroups log groups of a shard from cursor.
func (c *Console) pull(r *http.Request, sess *session, project, path, cursor string) ([]protocol.LogGroup, error) {
	rec := c.callAPI(r, sess, http.MethodGet, project, path, "type=logs&count="+strconv.Itoa(tailGroups)+"&cursor="+url.QueryEscape(cursor), nil)
	if rec.status != http.StatusOK {
		return nil, rec.err()
	}
	raw := rec.body.Bytes()
	if ct := rec.header.Get(protocol.HeaderCompressType); ct != "" {
		t, err := protocol.ParseCompressType(ct)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", path, err)
		}
		size, _ := strconv.Atoi(rec.header.Get(protocol.HeaderBodyRawSize))
		if raw, err = protocol.Decompress(nil, raw, t, size, 64<<20); err != nil {
			return nil, fmt.Errorf("pull %s: %w", path, err)
		}
	}
	var gl protocol.LogGroupList
	if err := gl.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("pull %s: %w", path, err)
	}
	return gl.LogGroups, nil
}

// apiJSON issues a GET of the API and decodes its JSON reply into v; an
// API error is returned as the console's error with the same code.
func (c *Console) apiJSON(r *http.Request, sess *session, project, pathAndQuery string, v any) error {
	p, rawQuery, _ := strings.Cut(pathAndQuery, "?")
	rec := c.callAPI(r, sess, http.MethodGet, project, p, rawQuery, nil)
	if rec.status != http.StatusOK {
		return rec.err()
	}
	if err := json.Unmarshal(rec.body.Bytes(), v); err != nil {
		return fmt.Errorf("decode %s: %w", p, err)
	}
	return nil
}

// err is the API's error reply as a console error (same status and code).
func (r *recorder) err() error {
	var e consoleError
	if json.Unmarshal(r.body.Bytes(), &e) != nil || e.Code == "" {
		return errorf(r.status, fmt.Sprintf("HTTP%d", r.status), "%s", strings.TrimSpace(r.body.String()))
	}
	e.Status = r.status
	return &e
}

func matchLog(g *protocol.LogGroup, l *protocol.Log) *query.Log {
	out := &query.Log{Time: int64(l.Time), Topic: g.Topic, Source: g.Source}
	for _, t := range g.LogTags {
		out.Tags = append(out.Tags, query.KV{Key: t.Key, Value: t.Value})
	}
	for _, kv := range l.Contents {
		out.Contents = append(out.Contents, query.KV{Key: kv.Key, Value: kv.Value})
	}
	return out
}

// row is a log as GetLogs renders it: a JSON object of strings, keys in
// order (time, source, topic, tags, contents).
type row []query.KV

func (r row) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, kv := range r {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(kv.Key)
		v, _ := json.Marshal(kv.Value)
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// rowOf renders a pulled log as GetLogs renders a row. Strings are
// copied: the groups alias the pulled buffer.
func rowOf(g *protocol.LogGroup, l *protocol.Log) row {
	out := make(row, 0, 4+len(g.LogTags)+len(l.Contents))
	out = append(out, query.KV{Key: "__time__", Value: strconv.FormatUint(uint64(l.Time), 10)})
	if l.HasTimeNs {
		out = append(out, query.KV{Key: "__time_ns_part__", Value: strconv.FormatUint(uint64(l.TimeNs), 10)})
	}
	out = append(out, query.KV{Key: "__source__", Value: strings.Clone(g.Source)}, query.KV{Key: "__topic__", Value: strings.Clone(g.Topic)})
	for _, t := range g.LogTags {
		out = append(out, query.KV{Key: query.TagPrefix + t.Key, Value: strings.Clone(t.Value)})
	}
	for _, kv := range l.Contents {
		out = append(out, query.KV{Key: strings.Clone(kv.Key), Value: strings.Clone(kv.Value)})
	}
	return out
}
