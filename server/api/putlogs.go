package api

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicelog/sluice/protocol"
)

// putState is the per-request scratch of PutLogs, pooled: the decoded
// groups alias the decompressed buffers, which live until the store's
// Write returns (Write must not keep them).
type putState struct {
	groups []protocol.LogGroup
	pkgs   protocol.SlsLogPackageList
	raw    [][]byte
}

var putPool = sync.Pool{New: func() any { return new(putState) }}

func (s *putState) reset() {
	for i := range s.groups {
		s.groups[i].Reset()
	}
	s.groups = s.groups[:0]
	s.pkgs.Reset()
	for i := range s.raw {
		s.raw[i] = s.raw[i][:0]
	}
	s.raw = s.raw[:0]
}

func (s *putState) nextRaw() *[]byte {
	if len(s.raw) < cap(s.raw) {
		s.raw = s.raw[:len(s.raw)+1]
	} else {
		s.raw = append(s.raw, nil)
	}
	return &s.raw[len(s.raw)-1]
}

func (s *putState) nextGroup() *protocol.LogGroup {
	if len(s.groups) < cap(s.groups) {
		s.groups = s.groups[:len(s.groups)+1]
	} else {
		s.groups = append(s.groups, protocol.LogGroup{})
	}
	return &s.groups[len(s.groups)-1]
}

// putLogs serves PutLogs on every path: /logstores/{ls},
// /logstores/{ls}/shards/lb and /logstores/{ls}/shards/route, with a LogGroup
// body or, with x-log-mode: batch_group, an SlsLogPackageList whose
// packages are compressed one by one.
func (a *API) putLogs(ctx context.Context, q *request) error {
	ls := q.vars["logstore"]
	lsMeta, err := a.cfg.Meta.GetLogstore(ctx, q.project, ls)
	if err != nil {
		return a.metaErr(err)
	}
	hdr := q.r.Header
	ctName := hdr.Get(protocol.HeaderCompressType)
	ct, err := protocol.ParseCompressType(ctName)
	if err != nil {
		return err
	}
	// Clients send x-log-bodyrawsize even for uncompressed bodies, and the Go
	// SDK sends "0" on requests without a body: only trust it with a
	// compress type.
	rawSize := -1
	if ctName != "" {
		if hdr.Get(protocol.HeaderBodyRawSize) == "" && ct == protocol.CompressLZ4 {
			return protocol.Errorf(protocol.CodeMissingBodyRawSize,
				"%s is required with %s: lz4: a raw LZ4 block does not record its size", protocol.HeaderBodyRawSize, protocol.HeaderCompressType)
		}
		if rawSize, err = rawSizeHeader(q.r); err != nil {
			return err
		}
	}
	st := putPool.Get().(*putState)
	defer func() {
		st.reset()
		putPool.Put(st)
	}()

	rawTotal := 0
	if strings.HasPrefix(hdr.Get("Content-Type"), protocol.ContentTypeJSON) {
		// The Java SDK can send a JSON log group (compressed like protobuf).
		raw, err := a.decompress(st, q.body, ct, rawSize, a.cfg.MaxRawBytes)
		if err != nil {
			return err
		}
		rawTotal = len(raw)
		if err := decodeJSONGroup(raw, st.nextGroup(), q.received); err != nil {
			return err
		}
	} else if strings.EqualFold(hdr.Get(protocol.HeaderMode), protocol.ModeBatchGroup) {
		if err := st.pkgs.Unmarshal(q.body); err != nil {
			return err
		}
		for i := range st.pkgs.Packages {
			p := &st.pkgs.Packages[i]
			pct := p.Compression(ct)
			if !pct.Valid() {
				return protocol.Errorf(protocol.CodeInvalidCompressType, "package %d: unknown compress_type %d", i, int32(p.CompressType))
			}
			size := -1
			if p.HasUncompressSize {
				size = int(p.UncompressSize)
				if size < 0 {
					return protocol.Errorf(protocol.CodeInvalidBodyRawSize, "package %d: negative uncompress_size %d", i, size)
				}
			}
			raw, err := a.decompress(st, p.Data, pct, size, a.cfg.MaxRawBytes-rawTotal)
			if err != nil {
				return addContext(err, fmt.Sprintf("package %d: ", i))
			}
			rawTotal += len(raw)
			if err := st.nextGroup().Unmarshal(raw); err != nil {
				return addContext(err, fmt.Sprintf("package %d: ", i))
			}
		}
	} else {
		raw, err := a.decompress(st, q.body, ct, rawSize, a.cfg.MaxRawBytes)
		if err != nil {
			return err
		}
		rawTotal = len(raw)
		if err := st.nextGroup().Unmarshal(raw); err != nil {
			return err
		}
	}

	logs := 0
	for i := range st.groups {
		logs += len(st.groups[i].Logs)
	}
	if logs > 0 {
		shard, err := a.router.route(lsMeta, q.query("key"), st.groups)
		if err != nil {
			return err
		}
		if err := a.checkLogTimes(st.groups, ls, lsMeta.TTL, q.received); err != nil {
			return err
		}
		if err := a.cfg.Logs.WriteShard(ctx, q.project, ls, shard, st.groups, q.received); err != nil {
			return storeErr(err)
		}
	}
	a.metrics.logs.WithLabelValues(q.project, ls).Add(float64(logs))
	a.metrics.rawBytes.WithLabelValues(q.project, ls).Add(float64(rawTotal))
	a.metrics.wireBytes.WithLabelValues(q.project, ls).Add(float64(len(q.body)))
	return writeEmpty(q)
}

// decompress decodes src into a pooled buffer of st, never producing more
// than limit bytes (so a lying x-log-bodyrawsize cannot make the server
// allocate more than the limit).
func (a *API) decompress(st *putState, src []byte, ct protocol.CompressType, rawSize, limit int) ([]byte, error) {
	if ct == protocol.CompressNone && rawSize < 0 {
		if len(src) > limit {
			return nil, protocol.Errorf(protocol.CodePostBodyTooLarge,
				"body of %d bytes exceeds the %d-byte limit: send smaller batches", len(src), a.cfg.MaxRawBytes)
		}
		return src, nil // decoded groups alias the request buffer, which outlives Write
	}
	if limit <= 0 {
		return nil, protocol.Errorf(protocol.CodePostBodyTooLarge,
			"uncompressed request exceeds the %d-byte limit: send smaller batches", a.cfg.MaxRawBytes)
	}
	buf := st.nextRaw()
	out, err := protocol.Decompress((*buf)[:0], src, ct, rawSize, limit)
	*buf = out
	if err != nil {
		return nil, err
	}
	return out, nil
}

// addContext prefixes a *protocol.Error's message.
func addContext(err error, prefix string) error {
	e := protocol.AsError(err)
	return &protocol.Error{HTTPStatus: e.HTTPStatus, Code: e.Code, Message: prefix + e.Message, Err: e.Err}
}

// decodeJSONGroup decodes the JSON form of a log group the Java SDK sends:
// {"__topic__": "", "__source__": "", "__logs__": [{"__time__": 1700000000,
// "key": "value", ...}], "__tags__": {"k": "v"}}. Non-string values keep
// their JSON text; a log without __time__ gets the receive time.
func decodeJSONGroup(b []byte, g *protocol.LogGroup, received time.Time) error {
	var body struct {
		Topic  string                       `json:"__topic__"`
		Source string                       `json:"__source__"`
		Logs   []map[string]json.RawMessage `json:"__logs__"`
		Tags   map[string]json.RawMessage   `json:"__tags__"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return protocol.Errorf(protocol.CodePostBodyInvalid, "invalid JSON log group: %v", err)
	}
	g.Topic, g.Source = body.Topic, body.Source
	for _, k := range slices.Sorted(maps.Keys(body.Tags)) {
		g.LogTags = append(g.LogTags, protocol.LogTag{Key: k, Value: jsonValue(body.Tags[k])})
	}
	for i, m := range body.Logs {
		l := protocol.Log{Time: uint32(received.Unix())}
		if t, ok := m["__time__"]; ok {
			sec, err := strconv.ParseUint(strings.Trim(string(t), `"`), 10, 32)
			if err != nil {
				return protocol.Errorf(protocol.CodeInvalidTimestamp, "__logs__[%d].__time__ %s: want unix seconds", i, t)
			}
			l.Time = uint32(sec)
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if k != "__time__" {
				l.Contents = append(l.Contents, protocol.LogContent{Key: k, Value: jsonValue(m[k])})
			}
		}
		g.Logs = append(g.Logs, l)
	}
	return nil
}

func jsonValue(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}
