package sls_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/sluicelog/sluice/agent/output/sls"
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// acks collects batch outcomes.
type acks struct {
	mu   sync.Mutex
	errs map[int]error
	n    map[int]int
}

func newAcks() *acks { return &acks{errs: map[int]error{}, n: map[int]int{}} }

func (a *acks) ack(id int) pipeline.Ack {
	return pipeline.AckFunc(func(err error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.errs[id] = err
		a.n[id]++
	})
}

// waitAll waits until ids 0..n-1 are acked and checks each was acked once
// with nil.
func (a *acks) waitAll(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.n) >= n
	}, 20*time.Second, 5*time.Millisecond, "batches not acked")
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range n {
		require.Equal(t, 1, a.n[id], "batch %d acked %d times", id, a.n[id])
		require.NoError(t, a.errs[id], "batch %d", id)
	}
}

func (a *acks) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.n)
}

func baseConfig(srv *logServer, t *testing.T) sls.Config {
	return sls.Config{
		Endpoint:        srv.URL,
		Project:         "proj",
		Logstore:        "store",
		AccessKeyID:     testAK,
		AccessKeySecret: testSecret,
		Source:          "10.0.0.7",
		FlushInterval:   20 * time.Millisecond,
		RetryInitial:    5 * time.Millisecond,
		RetryMax:        50 * time.Millisecond,
		DeadLetterDir:   filepath.Join(t.TempDir(), "dead"),
	}
}

func start(t *testing.T, cfg sls.Config, reg prometheus.Registerer) *sls.Output {
	t.Helper()
	o, err := sls.New(cfg, sls.Settings{Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, o.Start(context.Background()))
	return o
}

func shutdown(t *testing.T, o *sls.Output) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, o.Shutdown(ctx))
}

// fill resets b and fills it with n events of file path, numbered from first.
func fill(b *pipeline.Batch, path string, first, n int, ack pipeline.Ack) {
	b.Reset()
	b.Topic = "topic-a"
	b.AddTag("__path__", path)
	for i := range n {
		b.BeginEvent(uint32(1700000000+first+i), 0)
		b.AddField("content", fmt.Appendf(nil, "%s line %06d", path, first+i))
		b.AddField("seq", fmt.Appendf(nil, "%d", first+i))
		b.EndEvent()
	}
	b.Ack = ack
}

// lines returns every "content" received, in arrival order per path.
func lines(groups []*protocol.LogGroup) map[string][]string {
	out := map[string][]string{}
	for _, g := range groups {
		p := tag(g, "__path__")
		for i := range g.Logs {
			out[p] = append(out[p], content(&g.Logs[i], "content"))
		}
	}
	return out
}

func expected(path string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s line %06d", path, i))
	}
	return out
}

var packIDRe = regexp.MustCompile(`^[0-9A-F]{16}-[0-9A-F]+$`)

func TestDeliversSignedCompressedGroups(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*sls.Config)
	}{
		{"v1-lz4", func(*sls.Config) {}},
		{"v4-zstd", func(c *sls.Config) { c.SignatureVersion, c.Region, c.Compression = 4, "cn-hangzhou", "zstd" }},
		{"v1-deflate", func(c *sls.Config) { c.Compression = "deflate" }},
		{"v1-none-project-header", func(c *sls.Config) { c.Compression, c.ProjectInHeader = "none", true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newLogServer(t)
			cfg := baseConfig(srv, t)
			tc.mod(&cfg)
			o := start(t, cfg, prometheus.NewRegistry())
			a := newAcks()
			b := pipeline.NewBatch()
			for i := range 20 {
				path := fmt.Sprintf("/var/log/app%d.log", i%2)
				fill(b, path, (i/2)*10, 10, a.ack(i))
				require.NoError(t, o.Consume(context.Background(), b))
				// The producer reuses the batch right away.
				fill(b, "/garbage", 0, 3, nil)
			}
			a.waitAll(t, 20)
			shutdown(t, o)

			require.Empty(t, srv.rejected())
			groups := srv.received()
			got := lines(groups)
			require.Equal(t, expected("/var/log/app0.log", 100), got["/var/log/app0.log"])
			require.Equal(t, expected("/var/log/app1.log", 100), got["/var/log/app1.log"])
			require.NotContains(t, got, "/garbage")
			ids := map[string]bool{}
			for _, g := range groups {
				require.Equal(t, "topic-a", g.Topic)
				require.Equal(t, "10.0.0.7", g.Source)
				id := tag(g, sls.PackIDTag)
				require.Regexp(t, packIDRe, id)
				require.False(t, ids[id], "pack id %s reused", id)
				ids[id] = true
				require.Equal(t, uint32(1700000000), g.Logs[0].Time-uint32(mustAtoi(t, content(&g.Logs[0], "seq"))))
			}
			srv.mu.Lock()
			host := srv.hosts[0]
			srv.mu.Unlock()
			if cfg.ProjectInHeader {
				require.False(t, strings.HasPrefix(host, "proj."))
			} else {
				require.True(t, strings.HasPrefix(host, "proj."), host)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	var n int
	_, err := fmt.Sscanf(s, "%d", &n)
	require.NoError(t, err)
	return n
}

func TestLargeBatchSplitAcksOnce(t *testing.T) {
	srv := newLogServer(t)
	cfg := baseConfig(srv, t)
	cfg.MaxGroupBytes = 16 << 10
	cfg.MaxGroupLogs = 100
	o := start(t, cfg, nil)
	a := newAcks()
	b := pipeline.NewBatch()
	fill(b, "/big.log", 0, 1000, a.ack(0))
	require.NoError(t, o.Consume(context.Background(), b))
	a.waitAll(t, 1)
	shutdown(t, o)
	groups := srv.received()
	require.GreaterOrEqual(t, len(groups), 10)
	for _, g := range groups {
		require.LessOrEqual(t, len(g.Logs), 100)
		require.LessOrEqual(t, protocol.LogGroupSize(g), 16<<10)
	}
	got := lines(groups)["/big.log"]
	sort.Strings(got)
	require.Equal(t, expected("/big.log", 1000), got)
}

// TestRetriesTransientErrors: 5xx, quota, auth and not-sls answers are
// retried until accepted; each batch is delivered exactly once and acked
// nil; retries are counted by reason.
func TestRetriesTransientErrors(t *testing.T) {
	srv := newLogServer(t)
	script := map[int]struct {
		status int
		code   protocol.ErrorCode
	}{
		1: {503, protocol.CodeServerBusy},
		2: {500, protocol.CodeInternalServerError},
		3: {403, protocol.CodeWriteQuotaExceed},
		4: {401, protocol.CodeSignatureNotMatch},
		5: {404, protocol.CodeLogStoreNotExist},
	}
	srv.fail = func(n int, _ *http.Request) (int, protocol.ErrorCode) {
		s := script[n]
		return s.status, s.code
	}
	reg := prometheus.NewRegistry()
	cfg := baseConfig(srv, t)
	cfg.MaxConcurrency = 1
	o := start(t, cfg, reg)
	a := newAcks()
	b := pipeline.NewBatch()
	fill(b, "/r.log", 0, 5, a.ack(0))
	require.NoError(t, o.Consume(context.Background(), b))
	a.waitAll(t, 1)
	shutdown(t, o)
	require.Equal(t, expected("/r.log", 5), lines(srv.received())["/r.log"])
	require.Len(t, srv.received(), 1)
	for reason, want := range map[string]float64{"server_error": 2, "quota": 1, "auth": 1, "not_found": 1} {
		require.Equal(t, want, metric(t, reg, "sluice_output_sls_retries_total", "reason", reason), reason)
	}
	require.Equal(t, 1.0, metric(t, reg, "sluice_output_sls_groups_sent_total", "", ""))
	// Quota and 503 throttled the concurrency limit (then it grows back
	// slowly); with max 1 it stays 1.
	require.Equal(t, 1.0, metric(t, reg, "sluice_output_sls_concurrency_limit", "", ""))
}

func TestPermanentRejectionGoesToDeadLetter(t *testing.T) {
	srv := newLogServer(t)
	srv.fail = func(n int, _ *http.Request) (int, protocol.ErrorCode) {
		if n == 1 {
			return 400, protocol.CodePostBodyInvalid
		}
		return 0, ""
	}
	reg := prometheus.NewRegistry()
	cfg := baseConfig(srv, t)
	o := start(t, cfg, reg)
	a := newAcks()
	b := pipeline.NewBatch()
	fill(b, "/bad.log", 0, 7, a.ack(0))
	require.NoError(t, o.Consume(context.Background(), b))
	a.waitAll(t, 1) // durable in the dead-letter directory: acked nil
	fill(b, "/good.log", 0, 3, a.ack(1))
	require.NoError(t, o.Consume(context.Background(), b))
	a.waitAll(t, 2)
	shutdown(t, o)

	require.Equal(t, 1.0, metric(t, reg, "sluice_output_sls_dead_lettered_groups_total", "code", "PostBodyInvalid"))
	require.Equal(t, 7.0, metric(t, reg, "sluice_output_sls_dead_lettered_logs_total", "", ""))
	files, err := filepath.Glob(filepath.Join(cfg.DeadLetterDir, "*.loggroup"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	raw, err := os.ReadFile(files[0])
	require.NoError(t, err)
	var g protocol.LogGroup
	require.NoError(t, g.Unmarshal(raw))
	require.Equal(t, expected("/bad.log", 7), lines([]*protocol.LogGroup{&g})["/bad.log"])
	meta, err := os.ReadFile(strings.TrimSuffix(files[0], ".loggroup") + ".error.json")
	require.NoError(t, err)
	require.Contains(t, string(meta), `"errorCode": "PostBodyInvalid"`)
	require.Contains(t, string(meta), `"requestId": "req-1"`)
	require.Equal(t, expected("/good.log", 3), lines(srv.received())["/good.log"])
}

// TestClockCorrection: the server's clock is an hour ahead. The first
// request is refused as RequestTimeExpired; the output takes the server time
// from x-log-time and the retry is accepted.
func TestClockCorrection(t *testing.T) {
	srv := newLogServer(t)
	srv.clockOffset = time.Hour
	reg := prometheus.NewRegistry()
	o := start(t, baseConfig(srv, t), reg)
	a := newAcks()
	b := pipeline.NewBatch()
	fill(b, "/c.log", 0, 2, a.ack(0))
	require.NoError(t, o.Consume(context.Background(), b))
	a.waitAll(t, 1)
	shutdown(t, o)
	require.Len(t, srv.received(), 1)
	require.Equal(t, 1.0, metric(t, reg, "sluice_output_sls_retries_total", "reason", "clock"))
	require.Equal(t, protocol.CodeRequestTimeExpired, protocol.CodeOf(srv.rejected()[0]))
}

// TestSlowServerIsNotClockSkew: a server that takes 2.5 s to answer stamps
// x-log-time when it took the request; the output must not mistake the
// latency for a skewed clock and date later requests in the past.
func TestSlowServerIsNotClockSkew(t *testing.T) {
	srv := newLogServer(t)
	srv.delay = 2500 * time.Millisecond
	o := start(t, baseConfig(srv, t), nil)
	a := newAcks()
	b := pipeline.NewBatch()
	for i := range 2 {
		fill(b, "/slow.log", i, 1, a.ack(i))
		require.NoError(t, o.Consume(context.Background(), b))
		a.waitAll(t, i+1)
	}
	shutdown(t, o)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	require.Len(t, srv.dateSkews, 2)
	for i, d := range srv.dateSkews {
		require.Less(t, d.Abs(), 2*time.Second, "request %d dated %s from the server's clock", i, d)
	}
}

// TestWrongSecretIsRetriedNotDropped: auth failures keep the data (the key
// may be fixed); Shutdown then acks with an error, so the input does not
// advance its checkpoint.
func TestWrongSecretIsRetriedNotDropped(t *testing.T) {
	srv := newLogServer(t)
	cfg := baseConfig(srv, t)
	cfg.AccessKeySecret = "wrong"
	reg := prometheus.NewRegistry()
	o := start(t, cfg, reg)
	a := newAcks()
	b := pipeline.NewBatch()
	fill(b, "/w.log", 0, 2, a.ack(0))
	require.NoError(t, o.Consume(context.Background(), b))
	require.Eventually(t, func() bool {
		return metric(t, reg, "sluice_output_sls_retries_total", "reason", "auth") >= 3
	}, 10*time.Second, 5*time.Millisecond)
	require.Zero(t, a.count(), "not acked while failing")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.Error(t, o.Shutdown(ctx))
	require.Equal(t, 1, a.count())
	a.mu.Lock()
	require.Error(t, a.errs[0], "undelivered without a buffer: acked with the error")
	a.mu.Unlock()
	require.Empty(t, srv.received())
}

func TestValidateAndLifecycle(t *testing.T) {
	_, err := sls.New(sls.Config{}, sls.Settings{})
	require.Error(t, err)
	for _, key := range []string{"endpoint", "project", "logstore", "access_key", "dead_letter_dir"} {
		require.ErrorContains(t, err, key)
	}
	_, err = sls.New(sls.Config{Endpoint: "ftp://x", Project: "p", Logstore: "l", AccessKeyID: "a", AccessKeySecret: "s",
		DeadLetterDir: "/tmp/x", SignatureVersion: 4, Compression: "brotli"}, sls.Settings{})
	require.ErrorContains(t, err, "endpoint")
	require.ErrorContains(t, err, "region")
	require.ErrorContains(t, err, "compression")

	srv := newLogServer(t)
	o, err := sls.New(baseConfig(srv, t), sls.Settings{})
	require.NoError(t, err)
	b := pipeline.NewBatch()
	fill(b, "/x", 0, 1, nil)
	require.Error(t, o.Consume(context.Background(), b), "before Start")
	require.NoError(t, o.Shutdown(context.Background()), "safe without Start")
	require.NoError(t, o.Shutdown(context.Background()), "idempotent")
	require.Error(t, o.Start(context.Background()))
}

// metric returns the value of name (with label=value when label is set).
func metric(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if label != "" {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == label && lp.GetValue() != value {
						continue metrics
					}
				}
			}
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

// TestTooLargeIsSplit: a server whose request limit is below the output's
// group size refuses with PostBodyTooLarge; the output halves the group
// until it fits instead of dead-lettering it.
func TestTooLargeIsSplit(t *testing.T) {
	srv := newLogServer(t)
	srv.fail = func(_ int, r *http.Request) (int, protocol.ErrorCode) {
		switch size := mustAtoi(t, r.Header.Get(protocol.HeaderBodyRawSize)); {
		case size > 16<<10:
			return 413, "" // a proxy in front of the service
		case size > 4<<10:
			return 400, protocol.CodePostBodyTooLarge
		}
		return 0, ""
	}
	reg := prometheus.NewRegistry()
	cfg := baseConfig(srv, t)
	o := start(t, cfg, reg)
	a := newAcks()
	b := pipeline.NewBatch()
	fill(b, "/split.log", 0, 400, a.ack(0))
	require.NoError(t, o.Consume(context.Background(), b))
	a.waitAll(t, 1)
	shutdown(t, o)
	got := lines(srv.received())["/split.log"]
	sort.Strings(got)
	require.Equal(t, expected("/split.log", 400), got)
	require.Positive(t, metric(t, reg, "sluice_output_sls_split_groups_total", "", ""))
	require.Zero(t, metric(t, reg, "sluice_output_sls_dead_lettered_groups_total", "", ""))
	ids := map[string]bool{}
	for _, g := range srv.received() {
		id := tag(g, sls.PackIDTag)
		require.False(t, ids[id], "pack id %s reused by a split half", id)
		ids[id] = true
	}
}

// TestSendRateIsShared: max_bytes_per_sec is one limit for the whole
// agent. Two outputs sharing a limiter of 64 KiB/s (burst 64 KiB) deliver
// everything, and together they cannot send faster than the limit: the
// first second's burst, then 64 KiB per second (a lower bound on time,
// which a slow machine only makes longer).
func TestSendRateIsShared(t *testing.T) {
	const limit = 64 << 10
	shared := rate.NewLimiter(limit, limit)
	srv := newLogServer(t)
	reg := prometheus.NewRegistry()
	var outs []*sls.Output
	for _, ls := range []string{"store-a", "store-b"} {
		cfg := baseConfig(srv, t)
		cfg.Logstore = ls
		o, err := sls.New(cfg, sls.Settings{Registerer: reg, SendRate: shared})
		require.NoError(t, err)
		require.NoError(t, o.Start(context.Background()))
		outs = append(outs, o)
	}
	a := newAcks()
	b := pipeline.NewBatch()
	start := time.Now()
	for i := range 20 {
		fill(b, fmt.Sprintf("/var/log/app%d.log", i%2), (i/2)*200, 200, a.ack(i))
		require.NoError(t, outs[i%2].Consume(context.Background(), b))
	}
	a.waitAll(t, 20)
	elapsed := time.Since(start)
	for _, o := range outs {
		shutdown(t, o)
	}
	raw := metric(t, reg, "sluice_output_sls_raw_bytes_sent_total", "", "")
	require.Greater(t, raw, 3.0*limit, "the test must send several seconds' worth")
	minimum := time.Duration((raw - limit) / limit * float64(time.Second))
	require.GreaterOrEqual(t, elapsed, minimum*9/10, "sent %.0f raw bytes in %s at a shared limit of %d B/s", raw, elapsed, limit)
	require.Positive(t, metric(t, reg, "sluice_output_sls_rate_limited_seconds_total", "", ""))
	got := lines(srv.received())
	require.Len(t, got["/var/log/app0.log"], 2000)
	require.Len(t, got["/var/log/app1.log"], 2000)
}
