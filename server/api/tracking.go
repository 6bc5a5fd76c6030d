package api

import (
	"context"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/protocol"
)

// Web tracking (/logstores/{ls}/track): browsers and apps write logs
// without signing, to logstores that enable it (enable_tracking). POST
// takes the JSON log group PutLogs takes ({"__topic__", "__source__",
// "__logs__": [{...}], "__tags__": {...}}); GET (the tracking pixel) one
// log from the query parameters, and track_ua.gif adds the browser's
// User-Agent and Referer. Unsigned writes are open to anyone who can
// reach the server, so they are bounded tighter than PutLogs (the
// service's own limits: 3 MB, 4096 logs) and answered with CORS headers
// so pages on any origin can send them.

// Web tracking limits.
const (
	maxTrackBytes = 3 << 20
	maxTrackLogs  = 4096
)

// gifPixel is a 1x1 transparent GIF, the answer to the tracking pixel.
var gifPixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

func (a *API) webTracking(ctx context.Context, q *request) error {
	h := q.w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, x-log-apiversion, x-log-bodyrawsize, x-log-compresstype")
	h.Set("Access-Control-Max-Age", "86400")
	if q.r.Method == http.MethodOptions {
		return writeEmpty(q)
	}
	name := q.vars["logstore"]
	ls, err := a.cfg.Meta.GetLogstore(ctx, q.project, name)
	if err != nil {
		return a.metaErr(err)
	}
	if !ls.EnableTracking {
		return &protocol.Error{HTTPStatus: http.StatusForbidden, Code: protocol.CodeUnauthorized,
			Message: "web tracking is not enabled on logstore " + strconv.Quote(name) +
				": enable it (UpdateLogStore with enable_tracking: true) or send signed PutLogs"}
	}
	clientIP, _, err := net.SplitHostPort(q.r.RemoteAddr)
	if err != nil {
		clientIP = q.r.RemoteAddr
	}
	var g protocol.LogGroup
	if q.r.Method == http.MethodPost {
		raw, err := a.plainBody(q)
		if err != nil {
			return err
		}
		if len(raw) > maxTrackBytes {
			return protocol.Errorf(protocol.CodePostBodyTooLarge, "web tracking body of %d bytes exceeds %d: send fewer logs per request", len(raw), maxTrackBytes)
		}
		if err := decodeJSONGroup(raw, &g, q.received); err != nil {
			return err
		}
	} else {
		l := protocol.Log{Time: uint32(q.received.Unix())}
		params := q.r.URL.Query()
		for _, k := range slices.Sorted(maps.Keys(params)) {
			v := params.Get(k)
			switch {
			case k == "APIVersion":
			case k == "__topic__":
				g.Topic = v
			case k == "__source__":
				g.Source = v
			case strings.HasPrefix(k, "__tag__:"):
				g.LogTags = append(g.LogTags, protocol.LogTag{Key: strings.TrimPrefix(k, "__tag__:"), Value: v})
			default:
				l.Contents = append(l.Contents, protocol.LogContent{Key: k, Value: v})
			}
		}
		if q.vars["track"] == "track_ua.gif" {
			l.Contents = append(l.Contents,
				protocol.LogContent{Key: "__userAgent__", Value: q.r.UserAgent()},
				protocol.LogContent{Key: "__referer__", Value: q.r.Referer()})
		}
		g.Logs = append(g.Logs, l)
	}
	if len(g.Logs) > maxTrackLogs {
		return protocol.Errorf(protocol.CodeParameterInvalid, "web tracking request has %d logs: at most %d", len(g.Logs), maxTrackLogs)
	}
	if g.Source == "" {
		g.Source = clientIP
	}
	g.LogTags = append(g.LogTags, protocol.LogTag{Key: "__client_ip__", Value: clientIP})
	if len(g.Logs) > 0 {
		groups := []protocol.LogGroup{g}
		// Unsigned writes obey PutLogs' time window too: 4,096 logs on as
		// many days would make as many segments.
		if err := a.checkLogTimes(groups, name, ls.TTL, q.received); err != nil {
			return err
		}
		shard, err := a.router.route(ls, "", groups)
		if err != nil {
			return err
		}
		if err := a.cfg.Logs.WriteShard(ctx, q.project, name, shard, groups, q.received); err != nil {
			return storeErr(err)
		}
		a.metrics.logs.WithLabelValues(q.project, name).Add(float64(len(g.Logs)))
		a.metrics.wireBytes.WithLabelValues(q.project, name).Add(float64(len(q.body)))
	}
	if q.r.Method == http.MethodGet {
		h.Set("Content-Type", "image/gif")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Length", strconv.Itoa(len(gifPixel)))
		q.w.WriteHeader(http.StatusOK)
		_, _ = q.w.Write(gifPixel)
		return nil
	}
	return writeEmpty(q)
}
