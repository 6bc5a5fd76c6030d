package sls

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/internal/promreg"
)

type metrics struct {
	reg        prometheus.Registerer
	groupsSent prometheus.Counter
	logsSent   prometheus.Counter
	rawBytes   prometheus.Counter
	wireBytes  prometheus.Counter
	retries    *prometheus.CounterVec
	inflight   prometheus.Gauge
	limit      prometheus.Gauge
	queueBytes prometheus.Gauge
	deadGroups *prometheus.CounterVec
	deadLogs   prometheus.Counter
	buffered   prometheus.Counter
	replayed   prometheus.Counter
	splits     prometheus.Counter
	latency    prometheus.Histogram
	rateWait   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, project, logstore string) *metrics {
	l := prometheus.Labels{"project": project, "logstore": logstore}
	counter := func(name, help string) prometheus.Counter {
		return promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: l}))
	}
	gauge := func(name, help string) prometheus.Gauge {
		return promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: l}))
	}
	return &metrics{
		reg:        reg,
		groupsSent: counter("sluice_output_sls_groups_sent_total", "LogGroups the service accepted."),
		logsSent:   counter("sluice_output_sls_logs_sent_total", "Logs the service accepted."),
		rawBytes:   counter("sluice_output_sls_raw_bytes_sent_total", "Uncompressed LogGroup bytes the service accepted."),
		wireBytes:  counter("sluice_output_sls_wire_bytes_sent_total", "Compressed request body bytes the service accepted."),
		retries: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_output_sls_retries_total", Help: "Failed PutLogs attempts that will be retried, by reason.", ConstLabels: l},
			[]string{"reason"})),
		inflight:   gauge("sluice_output_sls_inflight_requests", "PutLogs requests in flight."),
		limit:      gauge("sluice_output_sls_concurrency_limit", "Current adaptive (AIMD) limit on requests in flight."),
		queueBytes: gauge("sluice_output_sls_queue_bytes", "Encoded LogGroup bytes waiting for a sender."),
		deadGroups: promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_output_sls_dead_lettered_groups_total", Help: "LogGroups the service rejected permanently, written to the dead-letter directory, by error code.", ConstLabels: l},
			[]string{"code"})),
		deadLogs: counter("sluice_output_sls_dead_lettered_logs_total", "Logs in dead-lettered LogGroups."),
		buffered: counter("sluice_output_sls_buffered_groups_total", "LogGroups written to the disk buffer because the service could not take them."),
		replayed: counter("sluice_output_sls_replayed_groups_total", "LogGroups sent from the disk buffer."),
		splits:   counter("sluice_output_sls_split_groups_total", "LogGroups split in two because the service refused them as too large."),
		rateWait: counter("sluice_output_sls_rate_limited_seconds_total", "Time PutLogs attempts waited for the agent's send rate limit (max_bytes_per_sec)."),
		latency: promreg.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_output_sls_request_duration_seconds", Help: "PutLogs request latency.", ConstLabels: l,
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)})),
	}
}
