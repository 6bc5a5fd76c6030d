package sls

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sluicelog/sluice/protocol"
)

// payload is a sealed group ready to send: what goes on the wire and into
// the disk buffer.
type payload struct {
	body    []byte // compressed LogGroup
	rawSize int
	ct      protocol.CompressType
	logs    int
	packID  string
}

const recordVersion = 1

// appendRecord encodes p as a disk buffer record:
// version, compress type, uvarint raw size, uvarint logs, uvarint len + pack id, body.
func (p *payload) appendRecord(dst []byte) []byte {
	dst = append(dst, recordVersion, byte(p.ct))
	dst = binary.AppendUvarint(dst, uint64(p.rawSize))
	dst = binary.AppendUvarint(dst, uint64(p.logs))
	dst = binary.AppendUvarint(dst, uint64(len(p.packID)))
	dst = append(dst, p.packID...)
	return append(dst, p.body...)
}

func decodeRecord(b []byte) (*payload, error) {
	if len(b) < 2 || b[0] != recordVersion {
		return nil, fmt.Errorf("unknown record version")
	}
	p := &payload{ct: protocol.CompressType(b[1])}
	if !p.ct.Valid() {
		return nil, fmt.Errorf("unknown compress type %d", b[1])
	}
	b = b[2:]
	var vals [3]uint64
	for i := range vals {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("truncated record header")
		}
		vals[i], b = v, b[n:]
	}
	if vals[0] > protocol.MaxRawBodySize || vals[1] > protocol.MaxRawBodySize || vals[2] > uint64(len(b)) {
		return nil, errors.New("corrupt record header")
	}
	p.rawSize, p.logs = int(vals[0]), int(vals[1])
	p.packID, p.body = string(b[:vals[2]]), b[vals[2]:]
	return p, nil
}

// sendError is a failed attempt, classified.
type sendError struct {
	status    int // 0: no HTTP response
	code      protocol.ErrorCode
	message   string
	requestID string
	reason    string // retry reason label
	permanent bool
	throttle  bool
	err       error
}

func (e *sendError) Error() string {
	if e.status == 0 {
		return fmt.Sprintf("PutLogs: %v", e.err)
	}
	return fmt.Sprintf("PutLogs: HTTP %d %s: %s (request id %q)", e.status, e.code, e.message, e.requestID)
}

func (e *sendError) Unwrap() error { return e.err }

// sender performs PutLogs requests with adaptive concurrency.
type sender struct {
	cfg      *Config
	log      *slog.Logger
	m        *metrics
	now      func() time.Time
	client   *http.Client
	url      string
	host     string
	signer   protocol.Signer
	lim      *limiter
	rate     *rate.Limiter // max_bytes_per_sec, shared; nil: unlimited
	offset   atomic.Int64  // server clock - local clock, seconds
	closeIdl func()
}

func newSender(cfg *Config, rt http.RoundTripper, sendRate *rate.Limiter, now func() time.Time, log *slog.Logger, m *metrics) (*sender, error) {
	base, host, err := cfg.baseURL()
	if err != nil {
		return nil, err
	}
	s := &sender{
		cfg: cfg, log: log, m: m, now: now,
		url:  base + "/logstores/" + cfg.Logstore + "/shards/lb",
		host: cfg.Project + "." + host,
		signer: protocol.Signer{Version: protocol.SignatureVersion(max(cfg.SignatureVersion, 1)), Region: cfg.Region,
			Credentials: protocol.Credentials{AccessKeyID: cfg.AccessKeyID, AccessKeySecret: cfg.AccessKeySecret, SecurityToken: cfg.SecurityToken}},
		lim:  newLimiter(cfg.MaxConcurrency, m),
		rate: sendRate,
	}
	if cfg.ProjectInHeader {
		s.host = host
	}
	if rt == nil {
		t := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: cfg.MaxConcurrency + 1,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		}
		if cfg.InsecureSkipVerify {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in, as Logtail does
		}
		rt = t
		s.closeIdl = t.CloseIdleConnections
	}
	s.client = &http.Client{Transport: rt, Timeout: cfg.RequestTimeout}
	return s, nil
}

func (s *sender) close() {
	if s.closeIdl != nil {
		s.closeIdl()
	}
}

// send makes one PutLogs attempt; nil is success.
func (s *sender) send(ctx context.Context, p *payload) *sendError {
	if s.rate != nil {
		start := time.Now()
		// WaitN refuses more than the burst at once: a larger group takes
		// its bytes in burst-sized pieces.
		for n := p.rawSize; n > 0; n -= s.rate.Burst() {
			if err := s.rate.WaitN(ctx, min(n, s.rate.Burst())); err != nil {
				return &sendError{reason: "shutdown", err: err}
			}
		}
		s.m.rateWait.Add(time.Since(start).Seconds())
	}
	if err := s.lim.acquire(ctx); err != nil {
		return &sendError{reason: "shutdown", err: err}
	}
	start := time.Now()
	serr := s.post(ctx, p)
	s.m.latency.Observe(time.Since(start).Seconds())
	s.lim.release(serr == nil, serr != nil && serr.throttle)
	if serr == nil {
		s.m.groupsSent.Inc()
		s.m.logsSent.Add(float64(p.logs))
		s.m.rawBytes.Add(float64(p.rawSize))
		s.m.wireBytes.Add(float64(len(p.body)))
		return nil
	}
	if serr.permanent {
		return serr
	}
	if ctx.Err() == nil {
		s.m.retries.WithLabelValues(serr.reason).Inc()
		s.log.Warn("PutLogs failed; will retry", "reason", serr.reason, "err", serr)
	}
	return serr
}

func (s *sender) post(ctx context.Context, p *payload) *sendError {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(p.body))
	if err != nil {
		return &sendError{reason: "request", permanent: true, err: err}
	}
	req.Host = s.host
	h := req.Header
	h.Set(protocol.HeaderContentType, protocol.ContentTypeProtobuf)
	h.Set(protocol.HeaderAPIVersion, protocol.APIVersion)
	h.Set(protocol.HeaderBodyRawSize, strconv.Itoa(p.rawSize))
	if v := p.ct.HeaderValue(); v != "" {
		h.Set(protocol.HeaderCompressType, v)
	}
	h.Set(protocol.HeaderUserAgent, "sluice-agent")
	if s.cfg.ProjectInHeader {
		h.Set(protocol.HeaderProject, s.cfg.Project)
	}
	signAt := s.now().Add(time.Duration(s.offset.Load()) * time.Second)
	if err := s.signer.SignRequest(req, p.body, signAt); err != nil {
		return &sendError{reason: "sign", permanent: true, err: err}
	}
	sent := s.now()
	resp, err := s.client.Do(req)
	if err != nil {
		var ne net.Error
		timeout := errors.As(err, &ne) && ne.Timeout()
		return &sendError{reason: "network", throttle: timeout, err: err}
	}
	defer resp.Body.Close()
	s.correctClock(resp.Header.Get(protocol.HeaderLogTime), sent)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return classify(resp, body)
}

// correctClock records the server clock offset from x-log-time, so that
// requests are dated in the server's time (a skewed agent clock would
// otherwise fail with RequestTimeExpired). The server stamps the time it
// took the request, somewhere between sent and now: only a time outside
// that interval (beyond the header's one-second resolution) is a skew — a
// slow request (a loaded server, a big body) is not.
func (s *sender) correctClock(v string, sent time.Time) {
	if v == "" {
		return
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return
	}
	var d int64
	switch lo, hi := sent.Unix(), s.now().Unix(); {
	case sec < lo-1:
		d = sec - lo
	case sec > hi+1:
		d = sec - hi
	}
	if old := s.offset.Swap(d); old != d && d != 0 {
		s.log.Info("correcting the request clock to the server's", "offset_seconds", d)
	}
}

var quotaCodes = map[protocol.ErrorCode]bool{
	protocol.CodeWriteQuotaExceed: true, protocol.CodeShardWriteQuotaExceed: true,
	protocol.CodeReadQuotaExceed: true, protocol.CodeShardReadQuotaExceed: true,
}

func classify(resp *http.Response, body []byte) *sendError {
	e := &sendError{status: resp.StatusCode, requestID: resp.Header.Get(protocol.HeaderRequestID)}
	var pe protocol.Error
	if json.Unmarshal(body, &pe) == nil {
		e.code, e.message = pe.Code, pe.Message
	} else {
		e.message = string(bytes.TrimSpace(body[:min(len(body), 512)]))
	}
	switch {
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		// A proxy's body limit: handled like the service's own (split).
		e.code, e.reason, e.permanent = protocol.CodePostBodyTooLarge, "rejected", true
	case e.requestID == "" && e.code == "":
		// Not the Log Service talking (a proxy, a load balancer): like
		// LoongCollector, treat it as a network problem.
		e.reason = "not_sls"
	case resp.StatusCode >= 500:
		e.reason, e.throttle = "server_error", resp.StatusCode == http.StatusServiceUnavailable
	case resp.StatusCode == http.StatusTooManyRequests || quotaCodes[e.code]:
		e.reason, e.throttle = "quota", true
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.reason = "auth"
	case resp.StatusCode == http.StatusNotFound:
		// The project or logstore may be created later (the controller
		// creates them); keep the data and retry.
		e.reason = "not_found"
	case e.code == protocol.CodeRequestTimeExpired:
		e.reason = "clock"
	default:
		e.reason, e.permanent = "rejected", true
	}
	return e
}

// backoff sleeps before retry attempt+1: exponential from RetryInitial,
// capped at RetryMax, with jitter.
func (s *sender) backoff(ctx context.Context, attempt int) error {
	d := s.cfg.RetryInitial << min(attempt-1, 20)
	if d > s.cfg.RetryMax || d <= 0 {
		d = s.cfg.RetryMax
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// limiter is an AIMD concurrency limit: +1 after `limit` consecutive-ish
// successes (additive 1/limit each), halved on throttling.
type limiter struct {
	mu       sync.Mutex
	limit    float64
	max      float64
	inflight int
	changed  chan struct{}
	m        *metrics
}

func newLimiter(maxConc int, m *metrics) *limiter {
	// Start at the maximum: the first throttle halves it.
	l := &limiter{limit: float64(maxConc), max: float64(maxConc), changed: make(chan struct{}), m: m}
	m.limit.Set(l.limit)
	return l
}

func (l *limiter) acquire(ctx context.Context) error {
	l.mu.Lock()
	for l.inflight >= int(l.limit) {
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		l.mu.Lock()
	}
	l.inflight++
	l.m.inflight.Set(float64(l.inflight))
	l.mu.Unlock()
	return nil
}

func (l *limiter) release(ok, throttled bool) {
	l.mu.Lock()
	l.inflight--
	switch {
	case throttled:
		l.limit = max(1, l.limit/2)
	case ok:
		l.limit = min(l.max, l.limit+1/l.limit)
	}
	l.m.inflight.Set(float64(l.inflight))
	l.m.limit.Set(l.limit)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}
