package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/sluicelog/sluice/protocol"
)

// Request bodies are read only for requests whose signature, permission
// and project check out (from the headers: the signature covers the body
// through its digest header, checked once the body is in), so a client
// without a key cannot make the server buffer anything. The body is then
// read against its Content-Length and, when compressed, its declared raw
// size (both refused before reading when over the limits), within
// BodyReadTimeout, and only once the bytes it may take are free in a
// server-wide budget (MaxInflightBodyBytes), so the number of connections
// does not multiply the memory bodies hold.

const (
	// DefaultMaxInflightBodyBytes is the default budget of request bodies
	// (as received plus decompressed) being read or handled at once.
	DefaultMaxInflightBodyBytes = 256 << 20
	// DefaultBodyReadTimeout bounds reading one body.
	DefaultBodyReadTimeout = time.Minute
	// DefaultBodyBudgetWait is how long a request waits for room in the
	// budget before a 503 ServerBusy.
	DefaultBodyBudgetWait = 5 * time.Second
)

type bodyBudget struct {
	sem     *semaphore.Weighted
	size    int64
	waiting prometheus.Gauge
	refused prometheus.Counter
	inUse   prometheus.Gauge
}

func newBodyBudget(size int64) *bodyBudget {
	return &bodyBudget{
		sem:     semaphore.NewWeighted(size),
		size:    size,
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_api_body_budget_waiting", Help: "Requests waiting for room in the request body budget."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_api_body_budget_refused_total", Help: "Requests refused with 503 ServerBusy because the request body budget stayed full."}),
		inUse:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_api_body_budget_bytes", Help: "Bytes of the request body budget held by requests being read or handled."}),
	}
}

func (b *bodyBudget) collectors() []prometheus.Collector {
	return []prometheus.Collector{b.waiting, b.refused, b.inUse}
}

// checkDeclaredSizes refuses, before reading anything, a body whose
// Content-Length or declared raw size (x-log-bodyrawsize of a compressed
// body) is over the limits.
func (a *API) checkDeclaredSizes(r *http.Request) error {
	if r.ContentLength > a.cfg.MaxBodyBytes {
		return protocol.Errorf(protocol.CodePostBodyTooLarge,
			"request body of %d bytes exceeds the %d-byte limit: send smaller batches", r.ContentLength, a.cfg.MaxBodyBytes)
	}
	if r.Header.Get(protocol.HeaderCompressType) == "" {
		return nil
	}
	raw, err := rawSizeHeader(r)
	if err != nil {
		return err
	}
	if raw > a.cfg.MaxRawBytes {
		return protocol.Errorf(protocol.CodePostBodyTooLarge,
			"%s %d exceeds the %d-byte limit on an uncompressed request: send smaller batches", protocol.HeaderBodyRawSize, raw, a.cfg.MaxRawBytes)
	}
	return nil
}

// reserveBody takes room in the body budget for r's body (its declared
// length, or the limit when it has none, plus its declared raw size when
// compressed), waiting up to BodyBudgetWait. The returned func gives it
// back.
func (a *API) reserveBody(ctx context.Context, r *http.Request) (func(), error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return func() {}, nil
	}
	n := r.ContentLength
	if n < 0 {
		n = a.cfg.MaxBodyBytes // chunked: the most it may be
	}
	if r.Header.Get(protocol.HeaderCompressType) != "" {
		if raw, err := rawSizeHeader(r); err == nil && raw > 0 {
			n += int64(raw)
		} else {
			n += int64(a.cfg.MaxRawBytes)
		}
	}
	b := a.bodies
	n = min(n, b.size)
	wctx, cancel := context.WithTimeout(ctx, a.cfg.BodyBudgetWait)
	defer cancel()
	b.waiting.Inc()
	err := b.sem.Acquire(wctx, n)
	b.waiting.Dec()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		b.refused.Inc()
		return nil, &protocol.Error{HTTPStatus: http.StatusServiceUnavailable, Code: protocol.CodeServerBusy,
			Message: "the server is busy (" + strconv.FormatInt(b.size>>20, 10) + " MiB of request bodies in flight): retry in " + retryAfterSeconds + "s"}
	}
	b.inUse.Add(float64(n))
	return func() {
		b.inUse.Sub(float64(n))
		b.sem.Release(n)
	}, nil
}

// setBodyDeadline gives the client BodyReadTimeout from now to send the
// body (the header had its own ReadHeaderTimeout).
func (a *API) setBodyDeadline(q *request) {
	a.setReadDeadline(q, time.Now().Add(a.cfg.BodyReadTimeout))
}

// clearReadDeadline removes the deadline setBodyDeadline (or the server's
// ReadTimeout) put on the connection.
func (a *API) clearReadDeadline(q *request) { a.setReadDeadline(q, time.Time{}) }

func (a *API) setReadDeadline(q *request, t time.Time) {
	err := http.NewResponseController(q.w).SetReadDeadline(t)
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		a.log.Debug("cannot set the connection's read deadline", "deadline", t, "err", err)
	}
}
