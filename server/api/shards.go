package api

import (
	"context"
	"errors"
	"math/bits"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/store"
)

// ShardLogs is the shard side of the log store: the ordered groups of
// each shard, by cursor (store.Store).
type ShardLogs interface {
	WriteShard(ctx context.Context, project, logstore string, shard int, groups []protocol.LogGroup, received time.Time) error
	Cursor(ctx context.Context, project, logstore string, shard int, at store.CursorAt) (int64, error)
	CursorTime(ctx context.Context, project, logstore string, shard int, cursor int64) (time.Time, error)
	Pull(ctx context.Context, project, logstore string, shard int, req store.PullRequest) (*store.PullResult, error)
}

// PullLogs limits: the Log Service's count limit, and the raw bytes of one
// response past its first group.
const (
	maxPullGroups = 1000
	maxPullBytes  = 10 << 20
)

// shardRouter picks the shard of a PutLogs without a hash key.
type shardRouter struct {
	rr sync.Map // project/logstore -> *atomic.Uint32
}

// route returns the shard for groups: by the MD5 hash key when the client
// routes (/shards/route?key=), else by the hash of the __pack_id__
// prefix when the groups carry one, so an agent's file (one pack-id
// prefix) stays in one shard in order and GetContextLogs finds its
// neighbours there; else round robin.
func (r *shardRouter) route(ls meta.Logstore, hashKey string, groups []protocol.LogGroup) (int, error) {
	n := max(ls.ShardCount, 1)
	if hashKey != "" {
		return shardOfKey(hashKey, n)
	}
	for i := range groups {
		for _, t := range groups[i].LogTags {
			if t.Key == "__pack_id__" {
				prefix, _, _ := strings.Cut(t.Value, "-")
				return shardOfPack(prefix, n), nil
			}
		}
	}
	v, _ := r.rr.LoadOrStore(ls.Project+"/"+ls.Name, new(atomic.Uint32))
	return int((v.(*atomic.Uint32).Add(1) - 1) % uint32(n)), nil
}

// shardOfKey returns the shard whose key range holds an MD5 hash key (up
// to 32 hex digits, a shorter one padded with zeros as the service
// compares keys as strings): floor(key * n / 2^128), the inverse of the
// ranges ListShards reports.
func shardOfKey(key string, n int) (int, error) {
	if len(key) > 32 {
		return 0, protocol.Errorf(protocol.CodeParameterInvalid, "hash key %q is longer than 32 hex digits (an MD5 in hex)", key)
	}
	padded := key + strings.Repeat("0", 32-len(key))
	hi, err1 := strconv.ParseUint(padded[:16], 16, 64)
	lo, err2 := strconv.ParseUint(padded[16:], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, protocol.Errorf(protocol.CodeParameterInvalid, "hash key %q is not hexadecimal (an MD5 in hex, up to 32 digits)", key)
	}
	h1, l1 := bits.Mul64(hi, uint64(n))
	h2, _ := bits.Mul64(lo, uint64(n))
	_, carry := bits.Add64(l1, h2, 0)
	return int(h1 + carry), nil
}

// shardKeyBound returns ceil(i * 2^128 / n) as 32 hex digits: the first
// key of shard i of n (ffff...ff for i == n, the end of the space).
func shardKeyBound(i, n int) string {
	if i >= n {
		return "ffffffffffffffffffffffffffffffff"
	}
	// i * 2^128 / n = (i * 2^64 / n) * 2^64: long division by n.
	hi, r := bits.Div64(uint64(i)%uint64(n), 0, uint64(n)) // (i mod n) * 2^64 / n; i < n
	lo, r := bits.Div64(r, 0, uint64(n))
	if r != 0 {
		var c uint64
		lo, c = bits.Add64(lo, 1, 0)
		hi += c
	}
	return hex64(hi) + hex64(lo)
}

func hex64(v uint64) string {
	s := strconv.FormatUint(v, 16)
	return strings.Repeat("0", 16-len(s)) + s
}

// shardOf parses the {shard} path segment and checks it against the
// logstore's shard count.
func (a *API) shardOf(ctx context.Context, q *request) (meta.Logstore, int, error) {
	ls, err := a.cfg.Meta.GetLogstore(ctx, q.project, q.vars["logstore"])
	if err != nil {
		return ls, 0, a.metaErr(err)
	}
	id, err := strconv.Atoi(q.vars["shard"])
	if err != nil || id < 0 || id >= max(ls.ShardCount, 1) {
		return ls, 0, protocol.Errorf(protocol.CodeShardNotExist, "shard %q does not exist in logstore %q (shards 0 to %d)", q.vars["shard"], ls.Name, max(ls.ShardCount, 1)-1)
	}
	return ls, id, nil
}

func cursorStoreErr(err error) error {
	if errors.Is(err, store.ErrInvalidCursor) {
		return &protocol.Error{HTTPStatus: http.StatusBadRequest, Code: protocol.CodeInvalidCursor,
			Message: "cursor is outside the shard's data (expired by the logstore's ttl, or after its end): get a cursor with GetCursor", Err: err}
	}
	return storeErr(err)
}

// getCursor serves GetCursor: from=begin|end|<unix seconds>.
func (a *API) getCursor(ctx context.Context, q *request) error {
	ls, shard, err := a.shardOf(ctx, q)
	if err != nil {
		return err
	}
	from := q.query("from")
	var at store.CursorAt
	switch from {
	case "begin":
		at.Kind = store.CursorBegin
	case "end":
		at.Kind = store.CursorEnd
	default:
		sec, err := strconv.ParseInt(from, 10, 64)
		if err != nil {
			return protocol.Errorf(protocol.CodeParameterInvalid, "from=%q: use begin, end or a unix time in seconds", from)
		}
		at = store.CursorAt{Kind: store.CursorTime, Time: time.Unix(sec, 0)}
	}
	c, err := a.cfg.Logs.Cursor(ctx, q.project, ls.Name, shard, at)
	if err != nil {
		return cursorStoreErr(err)
	}
	return writeJSON(q, map[string]string{"cursor": protocol.EncodeCursor(c)})
}

// getCursorTime serves GetCursorTime (type=cursor_time).
func (a *API) getCursorTime(ctx context.Context, q *request) error {
	ls, shard, err := a.shardOf(ctx, q)
	if err != nil {
		return err
	}
	c, err := protocol.DecodeCursor(q.query("cursor"))
	if err != nil {
		return err
	}
	t, err := a.cfg.Logs.CursorTime(ctx, q.project, ls.Name, shard, c)
	if err != nil {
		return cursorStoreErr(err)
	}
	return writeJSON(q, map[string]int64{"cursor_time": t.Unix()})
}

// pullLogs serves PullLogs and BatchGetLogs (type=logs; the Python SDK
// sends type=log): the shard's groups from cursor as a compressed
// LogGroupList, with the next cursor in x-log-cursor.
func (a *API) pullLogs(ctx context.Context, q *request) error {
	ls, shard, err := a.shardOf(ctx, q)
	if err != nil {
		return err
	}
	if q.query("query") != "" || q.query("processor") != "" {
		return protocol.NewError(protocol.CodeParameterInvalid,
			"PullLogs with a query or processor (SPL filtering on read) is not supported by this server: pull without one and filter in the consumer")
	}
	cursor, err := protocol.DecodeCursor(q.query("cursor"))
	if err != nil {
		return err
	}
	end := int64(-1)
	if s := q.query("end_cursor"); s != "" {
		if end, err = protocol.DecodeCursor(s); err != nil {
			return err
		}
	}
	count := maxPullGroups
	if s := q.query("count"); s != "" {
		if count, err = strconv.Atoi(s); err != nil || count < 1 || count > maxPullGroups {
			return protocol.Errorf(protocol.CodeParameterInvalid, "count=%q: want 1 to %d log groups", s, maxPullGroups)
		}
	}
	ct := acceptedCompression(q.r.Header.Get("Accept-Encoding"))
	res, err := a.cfg.Logs.Pull(ctx, q.project, ls.Name, shard, store.PullRequest{Cursor: cursor, EndCursor: end, MaxGroups: count, MaxBytes: maxPullBytes})
	if err != nil {
		return cursorStoreErr(err)
	}
	body, err := protocol.AppendCompressed(nil, res.Data, ct)
	if err != nil {
		return err
	}
	h := q.w.Header()
	h.Set("Content-Type", protocol.ContentTypeProtobuf)
	h.Set(protocol.HeaderCursor, protocol.EncodeCursor(res.Next))
	h.Set(protocol.HeaderCount, strconv.Itoa(res.Groups))
	h.Set(protocol.HeaderBodyRawSize, strconv.Itoa(len(res.Data)))
	if ct != protocol.CompressNone {
		h.Set(protocol.HeaderCompressType, ct.HeaderValue())
	}
	if res.Groups > 0 {
		// The Go SDK numbers the groups of a response from it.
		h.Set("x-log-read-last-cursor", strconv.FormatInt(res.Next-1, 10))
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(http.StatusOK)
	_, _ = q.w.Write(body)
	a.metrics.pulledGroups.WithLabelValues(q.project, ls.Name).Add(float64(res.Groups))
	return nil
}

// acceptedCompression picks the response compression from
// Accept-Encoding: the first of lz4, zstd, deflate it lists; none when it
// names none of them (aliyun-sdk sends an empty Accept-Encoding and
// decodes an uncompressed protobuf body; the other SDKs ask for one).
func acceptedCompression(accept string) protocol.CompressType {
	for _, part := range strings.Split(accept, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if ct, err := protocol.ParseCompressType(name); err == nil && name != "" {
			return ct
		}
	}
	return protocol.CompressNone
}
