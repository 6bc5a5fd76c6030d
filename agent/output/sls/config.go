package sls

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/sluicelog/sluice/agent/buffer"
	"github.com/sluicelog/sluice/protocol"
)

// Config configures the Log Service output.
type Config struct {
	// Endpoint is the Log Service endpoint: "http://host:port",
	// "https://host" or a bare "host[:port]" (http). The project is sent as
	// the first label of the Host header ({project}.{endpoint host}), as
	// every Log Service client does, unless ProjectInHeader.
	Endpoint string
	Project  string
	Logstore string
	// ProjectInHeader sends the project in x-log-project and leaves Host as
	// the endpoint's host (for servers reached by IP without wildcard DNS).
	ProjectInHeader bool

	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
	// SignatureVersion is 1 (HMAC-SHA1, default) or 4 (SLS4-HMAC-SHA256,
	// needs Region).
	SignatureVersion int
	Region           string
	// InsecureSkipVerify disables TLS certificate checks (what Logtail
	// does against its service; only for self-signed endpoints).
	InsecureSkipVerify bool

	// Compression of request bodies: "lz4" (default), "zstd", "deflate" or
	// "none".
	Compression string

	// Source is __source__ for batches without one (default: this
	// machine's first non-loopback IPv4 address).
	Source string

	// MaxGroupBytes caps an encoded LogGroup (default 2 MiB; the service
	// takes at most 10 MiB raw per request). MaxGroupLogs caps its logs
	// (default 4096, the service's limit). FlushInterval bounds how long a
	// group collects batches before it is sent (default 1s).
	MaxGroupBytes int
	MaxGroupLogs  int
	FlushInterval time.Duration

	// MaxConcurrency is the most requests in flight (default 8); the
	// output adapts between 1 and this (AIMD: +1 per window of successes,
	// halved on throttling).
	MaxConcurrency int
	// MaxQueueBytes bounds encoded groups waiting for a sender (default
	// 16 MiB, open groups included); Consume blocks beyond it.
	MaxQueueBytes int
	// RequestTimeout bounds one request (default 30s).
	RequestTimeout time.Duration
	// RetryInitial and RetryMax bound the exponential backoff between
	// retries (defaults 200ms, 30s).
	RetryInitial time.Duration
	RetryMax     time.Duration
	// AttemptsBeforeBuffer is how many attempts a group gets before it goes
	// to the disk buffer (default 3). Without a buffer, groups are retried
	// in memory forever and Consume blocks when the queue is full.
	AttemptsBeforeBuffer int
	// ReplayConcurrency is how many buffered groups are replayed at once
	// (default 1: strictly in order; more drains a backlog faster over
	// high-latency links but lets groups arrive interleaved).
	ReplayConcurrency int

	// BufferDir enables the disk buffer (Logtail's buffer_file_path), with
	// at most BufferMaxFiles segment files (buffer_file_num, default 25) of
	// BufferMaxFileSize bytes (buffer_file_size, default 20 MiB). It must be
	// distinct per output (per project/logstore).
	BufferDir         string
	BufferMaxFiles    int
	BufferMaxFileSize int64

	// DeadLetterDir receives groups the service rejects permanently (e.g.
	// 400 PostBodyInvalid): the encoded LogGroup and the error, fsynced.
	// Default: BufferDir/dead-letter. One of the two is required: the
	// output never drops a rejected group silently.
	DeadLetterDir string
}

const (
	defaultMaxGroupBytes  = 2 << 20
	defaultMaxGroupLogs   = 4096
	defaultFlushInterval  = time.Second
	defaultMaxConcurrency = 8
	defaultMaxQueueBytes  = 16 << 20
	defaultRequestTimeout = 30 * time.Second
	defaultRetryInitial   = 200 * time.Millisecond
	defaultRetryMax       = 30 * time.Second
	defaultAttempts       = 3
)

// Validate checks c; errors name the key and the fix.
func (c *Config) Validate() error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, errors.New("output.sls.endpoint: required, e.g. http://sluice-server:8080"))
	} else if _, _, err := c.baseURL(); err != nil {
		errs = append(errs, err)
	}
	if c.Project == "" {
		errs = append(errs, errors.New("output.sls.project: required"))
	}
	if c.Logstore == "" {
		errs = append(errs, errors.New("output.sls.logstore: required"))
	}
	if c.AccessKeyID == "" || c.AccessKeySecret == "" {
		errs = append(errs, errors.New("output.sls.access_key_id/access_key_secret: required to sign requests"))
	}
	switch c.SignatureVersion {
	case 0, 1:
	case 4:
		if c.Region == "" {
			errs = append(errs, errors.New("output.sls.region: required with signature_version 4, e.g. cn-hangzhou"))
		}
	default:
		errs = append(errs, fmt.Errorf("output.sls.signature_version: %d: use 1 or 4", c.SignatureVersion))
	}
	if _, err := c.compressType(); err != nil {
		errs = append(errs, err)
	}
	for name, v := range map[string]int{"max_group_bytes": c.MaxGroupBytes, "max_group_logs": c.MaxGroupLogs,
		"max_concurrency": c.MaxConcurrency, "max_queue_bytes": c.MaxQueueBytes, "attempts_before_buffer": c.AttemptsBeforeBuffer,
		"buffer_file_num": c.BufferMaxFiles, "replay_concurrency": c.ReplayConcurrency} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("output.sls.%s: %d is negative", name, v))
		}
	}
	if c.MaxGroupBytes > protocol.MaxRawBodySize {
		errs = append(errs, fmt.Errorf("output.sls.max_group_bytes: %d exceeds the service's %d-byte request limit", c.MaxGroupBytes, protocol.MaxRawBodySize))
	}
	if c.BufferDir == "" && c.DeadLetterDir == "" {
		errs = append(errs, errors.New("output.sls.dead_letter_dir: required when there is no buffer_file_path: rejected groups are kept there, never dropped"))
	}
	return errors.Join(errs...)
}

func (c *Config) compressType() (protocol.CompressType, error) {
	switch strings.ToLower(c.Compression) {
	case "", "lz4":
		return protocol.CompressLZ4, nil
	case "zstd":
		return protocol.CompressZstd, nil
	case "deflate":
		return protocol.CompressDeflate, nil
	case "none":
		return protocol.CompressNone, nil
	}
	return 0, fmt.Errorf("output.sls.compression: %q: use lz4, zstd, deflate or none", c.Compression)
}

// baseURL returns the scheme://host[:port] to dial and the host name
// (with port) the Host header is derived from.
func (c *Config) baseURL() (string, string, error) {
	ep := c.Endpoint
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", fmt.Errorf("output.sls.endpoint: %q is not http(s)://host[:port]", c.Endpoint)
	}
	return u.Scheme + "://" + u.Host, u.Host, nil
}

func (c *Config) withDefaults() Config {
	d := *c
	setDefault := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDefault(&d.MaxGroupBytes, defaultMaxGroupBytes)
	setDefault(&d.MaxGroupLogs, defaultMaxGroupLogs)
	setDefault(&d.MaxConcurrency, defaultMaxConcurrency)
	setDefault(&d.MaxQueueBytes, defaultMaxQueueBytes)
	setDefault(&d.AttemptsBeforeBuffer, defaultAttempts)
	setDefault(&d.ReplayConcurrency, 1)
	if d.FlushInterval <= 0 {
		d.FlushInterval = defaultFlushInterval
	}
	if d.RequestTimeout <= 0 {
		d.RequestTimeout = defaultRequestTimeout
	}
	if d.RetryInitial <= 0 {
		d.RetryInitial = defaultRetryInitial
	}
	if d.RetryMax <= 0 {
		d.RetryMax = defaultRetryMax
	}
	if d.DeadLetterDir == "" {
		d.DeadLetterDir = d.BufferDir + "/dead-letter"
	}
	return d
}

// Settings carry what the output needs from the agent.
type Settings struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nothing
	// Transport overrides the HTTP transport (tests, proxies); nil builds
	// one from the config.
	Transport http.RoundTripper
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// SendRate, when set, paces every PutLogs attempt by its raw
	// (uncompressed) bytes: the instance's max_bytes_per_sec, one limiter
	// shared by all the agent's outputs (burst: a second's worth).
	SendRate *rate.Limiter
	// BufferQuota, when set, bounds the disk buffers of every output
	// sharing it together (buffer_file_num is per agent, not per
	// logstore); nil: BufferMaxFiles for this output alone.
	BufferQuota *buffer.Quota
}
