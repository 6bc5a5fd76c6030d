package api

import (
	"context"
	"errors"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/store"
)

// GetContextLogs (GET /logstores/{ls}?type=context_log&pack_id&pack_meta
// &back_lines&forward_lines): the logs written before and after a given
// one by the same source, as the console's context browsing shows them.
//
// A source (an agent's file, a producer) tags its groups __pack_id__ =
// <prefix>-<seq>; groups with one prefix are one context, in order. The
// router sends every group of a prefix to one shard (shardOfPack), so the
// context is that shard's groups with the prefix, read from the shard log
// around the start log: its group's earlier and later logs first, then
// earlier and later groups, scanning at most contextScanGroups groups each
// way (the answer is "Incomplete" when that cut it short).
//
// pack_meta says where the start log is. GetLogs gives every search row
// with a pack id a __pack_meta__ of "<shard>|t<receive time>|<log hash>":
// the shard its prefix routes to, the second the group was received (a
// window of the shard found by GetCursor-by-time) and a hash of the log's
// time and contents that picks it out of its group (the search store
// keeps neither cursors nor positions in a group). The logs GetContextLogs
// returns carry the exact position instead, in the Log Service's own shape
// "<shard>|<cursor>|<logs in group>|<index>", accepted as well.

// Context limits: lines each way (the service's), and groups scanned
// each way.
const (
	maxContextLines   = 100
	contextScanGroups = 20000
	// contextLocateGroups bounds the groups of one receive second read
	// to find the start log (GetLogs' pack_meta names the second only).
	contextLocateGroups = 100000
	contextPullGroups   = 100
	contextPullBytes    = 4 << 20
)

// shardOfPack is the shard the groups of a pack-id prefix go to.
func shardOfPack(prefix string, shards int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(prefix))
	return int(h.Sum32() % uint32(max(shards, 1)))
}

// logHash identifies a log within its group: its time and its contents
// (each key's first value, in key order).
func logHash(t string, kv func(yield func(k, v string))) string {
	type pair struct{ k, v string }
	var pairs []pair
	seen := map[string]bool{}
	kv(func(k, v string) {
		if !seen[k] {
			seen[k] = true
			pairs = append(pairs, pair{k, v})
		}
	})
	slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	h := fnv.New64a()
	h.Write([]byte(t))
	for _, p := range pairs {
		h.Write([]byte{0})
		h.Write([]byte(p.k))
		h.Write([]byte{1})
		h.Write([]byte(p.v))
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

func protoLogHash(l *protocol.Log) string {
	return logHash(strconv.FormatUint(uint64(l.Time), 10), func(yield func(k, v string)) {
		for _, c := range l.Contents {
			yield(c.Key, c.Value)
		}
	})
}

// rowFields the search store adds to a log's contents.
func isRowSystemField(k string) bool {
	switch k {
	case "__time__", "__time_ns_part__", "__source__", "__topic__", "__pack_meta__":
		return true
	}
	return strings.HasPrefix(k, "__tag__:")
}

// addPackMeta gives search rows with a pack id their __pack_meta__.
func addPackMeta(rows [][]store.Field, shards int) {
	for i, row := range rows {
		var packID, recv, t string
		for _, f := range row {
			switch f.Key {
			case "__tag__:__pack_id__":
				packID = f.Value
			case "__tag__:__receive_time__":
				recv = f.Value
			case "__time__":
				t = f.Value
			}
		}
		if packID == "" || recv == "" {
			continue
		}
		prefix, _, _ := strings.Cut(packID, "-")
		h := logHash(t, func(yield func(k, v string)) {
			for _, f := range row {
				if !isRowSystemField(f.Key) {
					yield(f.Key, f.Value)
				}
			}
		})
		rows[i] = append(row, store.Field{Key: "__pack_meta__", Value: strconv.Itoa(shardOfPack(prefix, shards)) + "|t" + recv + "|" + h})
	}
}

// logPos is a log's position in a shard.
type logPos struct {
	shard  int
	cursor int64
	index  int
	group  protocol.LogGroup // a copy that owns its strings
}

func packPrefix(g *protocol.LogGroup) (id, prefix string) {
	for _, t := range g.LogTags {
		if t.Key == "__pack_id__" {
			prefix, _, _ = strings.Cut(t.Value, "-")
			return t.Value, prefix
		}
	}
	return "", ""
}

func (a *API) getContextLogs(ctx context.Context, q *request) error {
	name := q.vars["logstore"]
	ls, err := a.cfg.Meta.GetLogstore(ctx, q.project, name)
	if err != nil {
		return a.metaErr(err)
	}
	packID := q.query("pack_id")
	prefix, seq, ok := strings.Cut(packID, "-")
	if _, err := strconv.ParseUint(seq, 16, 64); !ok || prefix == "" || err != nil {
		return protocol.Errorf(protocol.CodeParameterInvalid, "pack_id %q: want <prefix>-<sequence> in hex, the __tag__:__pack_id__ of a log from GetLogs", packID)
	}
	lines := [2]int{}
	for i, p := range []string{"back_lines", "forward_lines"} {
		n, err := queryInt(q, p, 0)
		if err != nil {
			return err
		}
		if n < 0 || n > maxContextLines {
			return protocol.Errorf(protocol.CodeParameterInvalid, "%s %d must be 0 to %d", p, n, maxContextLines)
		}
		lines[i] = int(n)
	}
	// Bounded like a query: the scans read at most contextScanGroups
	// groups per shard and direction, within the query timeout.
	ctx, cancel := context.WithTimeout(ctx, a.cfg.QueryTimeout)
	defer cancel()
	pos, err := a.locateLog(ctx, q.project, ls, packID, q.query("pack_meta"))
	if err != nil {
		return err
	}
	complete := true
	g := &pos.group
	type located struct {
		cursor int64
		n, i   int
		g      *protocol.LogGroup
	}
	var before, after []located
	for i := pos.index - 1; i >= 0 && len(before) < lines[0]; i-- {
		before = append(before, located{pos.cursor, len(g.Logs), i, g})
	}
	for i := pos.index + 1; i < len(g.Logs) && len(after) < lines[1]; i++ {
		after = append(after, located{pos.cursor, len(g.Logs), i, g})
	}
	for dir, want := range []int{lines[0] - len(before), lines[1] - len(after)} {
		if want <= 0 {
			continue
		}
		err := a.scanShard(ctx, q.project, name, pos.shard, pos.cursor, dir == 1, func(c int64, sg *protocol.LogGroup) bool {
			if _, p := packPrefix(sg); p != prefix {
				return true
			}
			cp := sg.Clone()
			for k := range cp.Logs {
				i := k
				if dir == 0 {
					i = len(cp.Logs) - 1 - k
				}
				l := located{c, len(cp.Logs), i, cp}
				if dir == 0 {
					before = append(before, l)
					if len(before) == lines[0] {
						return false
					}
				} else {
					after = append(after, l)
					if len(after) == lines[1] {
						return false
					}
				}
			}
			return true
		})
		if errors.Is(err, errScanLimit) {
			complete = false
		} else if err != nil {
			return err
		}
	}
	slices.Reverse(before)
	out := make([]map[string]string, 0, len(before)+1+len(after))
	add := func(l located, number int) {
		m := logMap(l.g, l.i)
		m["__index_number__"] = strconv.Itoa(number)
		m["__pack_meta__"] = strconv.Itoa(pos.shard) + "|" + protocol.EncodeCursor(l.cursor) + "|" + strconv.Itoa(l.n) + "|" + strconv.Itoa(l.i)
		out = append(out, m)
	}
	for k, l := range before {
		add(l, k-len(before))
	}
	add(located{pos.cursor, len(g.Logs), pos.index, g}, 0)
	for k, l := range after {
		add(l, k+1)
	}
	progress := "Complete"
	if !complete {
		progress = "Incomplete"
	}
	q.w.Header().Set(protocol.HeaderProgress, progress)
	return writeJSON(q, map[string]any{"total_lines": len(out), "back_lines": len(before), "forward_lines": len(after),
		"progress": progress, "logs": out})
}

// logMap is log i of g as a GetLogs row.
func logMap(g *protocol.LogGroup, i int) map[string]string {
	l := &g.Logs[i]
	m := map[string]string{"__time__": strconv.FormatUint(uint64(l.Time), 10), "__topic__": g.Topic, "__source__": g.Source}
	for _, t := range g.LogTags {
		m["__tag__:"+t.Key] = t.Value
	}
	for _, c := range l.Contents {
		if _, dup := m[c.Key]; !dup || isRowSystemField(c.Key) {
			m[c.Key] = c.Value
		}
	}
	return m
}

var errScanLimit = errors.New("context scan limit reached")

// scanShard calls fn for the groups of a shard after cursor (forward) or
// before it (backward, nearest first) until fn returns false, the shard
// ends or contextScanGroups groups were seen (errScanLimit). fn's group
// is valid only during the call.
func (a *API) scanShard(ctx context.Context, project, logstore string, shard int, cursor int64, forward bool, fn func(int64, *protocol.LogGroup) bool) error {
	var gl protocol.LogGroupList
	seen := 0
	if forward {
		next := cursor + 1
		for seen < contextScanGroups {
			res, err := a.cfg.Logs.Pull(ctx, project, logstore, shard, store.PullRequest{Cursor: next, EndCursor: -1, MaxGroups: contextPullGroups, MaxBytes: contextPullBytes})
			if errors.Is(err, store.ErrInvalidCursor) {
				return nil // the start group was the shard's last
			}
			if err != nil {
				return cursorStoreErr(err)
			}
			if res.Groups == 0 {
				return nil
			}
			if err := gl.Unmarshal(res.Data); err != nil {
				return err
			}
			for k := range gl.LogGroups {
				if !fn(next+int64(k), &gl.LogGroups[k]) {
					return nil
				}
			}
			seen += len(gl.LogGroups)
			next = res.Next
		}
		return errScanLimit
	}
	begin, err := a.cfg.Logs.Cursor(ctx, project, logstore, shard, store.CursorAt{Kind: store.CursorBegin})
	if err != nil {
		return cursorStoreErr(err)
	}
	end := cursor // exclusive
	for end > begin {
		if seen >= contextScanGroups {
			return errScanLimit
		}
		from := max(begin, end-contextPullGroups)
		// Pull [from, end) in pieces (MaxBytes may cut a response short).
		var chunk []protocol.LogGroup
		for c := from; c < end; {
			res, err := a.cfg.Logs.Pull(ctx, project, logstore, shard, store.PullRequest{Cursor: c, EndCursor: end, MaxGroups: int(end - c), MaxBytes: contextPullBytes})
			if err != nil {
				return cursorStoreErr(err)
			}
			if res.Groups == 0 {
				break
			}
			if err := gl.Unmarshal(res.Data); err != nil {
				return err
			}
			for k := range gl.LogGroups {
				chunk = append(chunk, *gl.LogGroups[k].Clone())
			}
			c = res.Next
		}
		for k := len(chunk) - 1; k >= 0; k-- {
			if !fn(from+int64(k), &chunk[k]) {
				return nil
			}
		}
		seen += len(chunk)
		end = from
	}
	return nil
}

// locateLog finds the start log of a context from its pack id and meta.
func (a *API) locateLog(ctx context.Context, project string, ls meta.Logstore, packID, packMeta string) (logPos, error) {
	bad := func(why string) error {
		return protocol.Errorf(protocol.CodeParameterInvalid, "pack_meta %q %s: pass the __pack_meta__ GetLogs returned with the log", packMeta, why)
	}
	notFound := func() error {
		return &protocol.Error{HTTPStatus: http.StatusNotFound, Code: protocol.CodeParameterInvalid,
			Message: "no log with pack_id " + strconv.Quote(packID) + " and pack_meta " + strconv.Quote(packMeta) + " in logstore " + strconv.Quote(ls.Name) + " (expired, or not written there)"}
	}
	parts := strings.Split(packMeta, "|")
	if len(parts) < 3 {
		return logPos{}, bad("is not <shard>|t<receive time>|<hash> or <shard>|<cursor>|<logs>|<index>")
	}
	shard, err := strconv.Atoi(parts[0])
	if err != nil || shard < 0 || shard >= max(ls.ShardCount, 1) {
		return logPos{}, bad("names no shard of the logstore")
	}
	var gl protocol.LogGroupList
	if len(parts) == 4 {
		// The exact position: <shard>|<cursor>|<logs in group>|<index>.
		c, err := protocol.DecodeCursor(parts[1])
		if err != nil {
			return logPos{}, bad("has no valid cursor")
		}
		idx, err := strconv.Atoi(parts[3])
		if err != nil || idx < 0 {
			return logPos{}, bad("has no valid index")
		}
		res, err := a.cfg.Logs.Pull(ctx, project, ls.Name, shard, store.PullRequest{Cursor: c, EndCursor: -1, MaxGroups: 1, MaxBytes: 1})
		if errors.Is(err, store.ErrInvalidCursor) {
			return logPos{}, notFound()
		}
		if err != nil {
			return logPos{}, cursorStoreErr(err)
		}
		if res.Groups == 0 {
			return logPos{}, notFound()
		}
		if err := gl.Unmarshal(res.Data); err != nil {
			return logPos{}, err
		}
		g := &gl.LogGroups[0]
		if id, _ := packPrefix(g); id != packID || idx >= len(g.Logs) {
			return logPos{}, notFound()
		}
		return logPos{shard: shard, cursor: c, index: idx, group: *g.Clone()}, nil
	}
	recv, err := strconv.ParseInt(strings.TrimPrefix(parts[1], "t"), 10, 64)
	if !strings.HasPrefix(parts[1], "t") || err != nil {
		return logPos{}, bad("has no receive time")
	}
	hash := parts[2]
	// The shard the prefix routes to first, then the others (a hash-key
	// route, or a shard count changed since).
	shards := []int{shard}
	for s := range max(ls.ShardCount, 1) {
		if s != shard {
			shards = append(shards, s)
		}
	}
	for _, s := range shards {
		from, err := a.cfg.Logs.Cursor(ctx, project, ls.Name, s, store.CursorAt{Kind: store.CursorTime, Time: time.Unix(recv, 0)})
		if err != nil {
			return logPos{}, cursorStoreErr(err)
		}
		to, err := a.cfg.Logs.Cursor(ctx, project, ls.Name, s, store.CursorAt{Kind: store.CursorTime, Time: time.Unix(recv+1, 0)})
		if err != nil {
			return logPos{}, cursorStoreErr(err)
		}
		var found *logPos
		if to-from > contextLocateGroups {
			// More groups arrived in that second than a lookup reads:
			// look at the first ones only.
			to = from + contextLocateGroups
		}
		for c := from; c < to && found == nil; {
			res, err := a.cfg.Logs.Pull(ctx, project, ls.Name, s, store.PullRequest{Cursor: c, EndCursor: to, MaxGroups: contextPullGroups, MaxBytes: contextPullBytes})
			if err != nil {
				return logPos{}, cursorStoreErr(err)
			}
			if res.Groups == 0 {
				break
			}
			if err := gl.Unmarshal(res.Data); err != nil {
				return logPos{}, err
			}
			for k := range gl.LogGroups {
				g := &gl.LogGroups[k]
				if id, _ := packPrefix(g); id != packID {
					continue
				}
				for i := range g.Logs {
					if protoLogHash(&g.Logs[i]) == hash {
						found = &logPos{shard: s, cursor: c + int64(k), index: i, group: *g.Clone()}
						break
					}
				}
				if found != nil {
					break
				}
			}
			c = res.Next
		}
		if found != nil {
			return *found, nil
		}
	}
	return logPos{}, notFound()
}
