package file

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one input. Every series carries the config name as a constant
// label, so the inputs of one agent share a registry; Shutdown unregisters.
type metrics struct {
	bytesRead     prometheus.Counter
	linesRead     prometheus.Counter
	linesSplit    prometheus.Counter
	nonUTF8       prometheus.Counter
	skippedBytes  *prometheus.CounterVec
	lostBytes     prometheus.Counter
	batchFailures prometheus.Counter
	rotations     *prometheus.CounterVec
	openFiles     prometheus.Gauge
	watchedFiles  prometheus.Gauge
	lag           *prometheus.GaugeVec

	inotifyDirs      prometheus.Gauge
	inotifyOverflows prometheus.Counter

	reg        prometheus.Registerer
	registered []prometheus.Collector
}

// Rotation kinds (label "kind" of sluice_file_rotations_total).
const (
	rotRename    = "rename"
	rotTruncate  = "truncate"
	rotDelete    = "delete"
	rotSignature = "signature_change" // inode reused or file rewritten in place
)

func newMetrics(reg prometheus.Registerer, config string) (*metrics, error) {
	cl := prometheus.Labels{"config": config}
	m := &metrics{
		bytesRead: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_file_read_bytes_total",
			Help: "Bytes read from files.", ConstLabels: cl}),
		linesRead: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_file_read_lines_total",
			Help: "Lines read from files (a line split for size counts once per piece).", ConstLabels: cl}),
		linesSplit: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_file_lines_split_total",
			Help: "Lines longer than max_read_buffer_size, cut into several events.", ConstLabels: cl}),
		nonUTF8: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_file_non_utf8_lines_total",
			Help: "Lines with bytes that are not valid UTF-8 (replaced by spaces when discardNonUtf8 is set, or undecodable GBK).", ConstLabels: cl}),
		skippedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_file_skipped_bytes_total",
			Help: "Bytes deliberately not read: reason tail (first sight of a file larger than tail_size_kb) or existing (file present at config start, tailExisted false).", ConstLabels: cl}, []string{"reason"}),
		lostBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_file_lost_bytes_total",
			Help: "Bytes of files that disappeared before they were read (rotated away and deleted, uncompressed, while the agent was down; or unreadable). Each loss is logged at WARN with the path.", ConstLabels: cl}),
		batchFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_file_batch_failures_total",
			Help: "Batches acknowledged with an error; the file is re-read from its last acknowledged offset.", ConstLabels: cl}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_file_rotations_total",
			Help: "File rotations seen, by kind: rename, truncate, delete, signature_change.", ConstLabels: cl}, []string{"kind"}),
		openFiles: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_file_open_files",
			Help: "File descriptors held open.", ConstLabels: cl}),
		watchedFiles: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_file_watched_files",
			Help: "Files tracked (matched by the config, or rotated and still being read).", ConstLabels: cl}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_file_lag_bytes",
			Help: "Bytes written but not yet read, for the most lagging files only (bounded series).", ConstLabels: cl}, []string{"path"}),
		inotifyDirs: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_file_inotify_dirs",
			Help: "Directories watched with inotify (new files are found at once there; every directory is also polled).", ConstLabels: cl}),
		inotifyOverflows: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_file_inotify_overflows_total",
			Help: "inotify event queue overflows, each followed by a full discovery pass.", ConstLabels: cl}),
		reg: reg,
	}
	for _, k := range []string{rotRename, rotTruncate, rotDelete, rotSignature} {
		m.rotations.WithLabelValues(k)
	}
	for _, r := range []string{"tail", "existing"} {
		m.skippedBytes.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.bytesRead, m.linesRead, m.linesSplit, m.nonUTF8, m.skippedBytes,
		m.lostBytes, m.batchFailures, m.rotations, m.openFiles, m.watchedFiles, m.lag, m.inotifyDirs, m.inotifyOverflows} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register file input metrics: an input named %q is already registered (shut it down first): %w", config, err)
			}
			return nil, fmt.Errorf("register file input metrics: %w", err)
		}
		m.registered = append(m.registered, c)
	}
	return m, nil
}

func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

type lagSample struct {
	path string
	lag  int64
}

// setLag publishes the n largest lags, replacing the previous set.
func (m *metrics) setLag(samples []lagSample, n int) {
	slices.SortFunc(samples, func(a, b lagSample) int { return cmp.Compare(b.lag, a.lag) })
	m.lag.Reset()
	for i, s := range samples {
		if i >= n || s.lag <= 0 {
			break
		}
		m.lag.WithLabelValues(s.path).Set(float64(s.lag))
	}
}
