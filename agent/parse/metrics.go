package parse

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/internal/promreg"
)

// metrics holds one stage's counters, resolved once per reason so the hot
// path does no label lookups.
type metrics struct {
	config    string
	failures  [numReasons]prometheus.Counter
	discarded [numReasons]prometheus.Counter
	logger    *slog.Logger
	lim       limiter
}

func newMetrics(reg prometheus.Registerer, config string, logger *slog.Logger) (*metrics, error) {
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_parse_failures_total",
		Help: "Events that failed to parse (or whose time failed to parse), by collection config and reason.",
	}, []string{"config", "reason"})
	discarded := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_parse_discarded_events_total",
		Help: "Events dropped because they failed to parse and discardUnmatch is set, by collection config and reason.",
	}, []string{"config", "reason"})
	if reg != nil {
		var err error
		if failures, err = promreg.Reuse(reg, failures); err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
		if discarded, err = promreg.Reuse(reg, discarded); err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
	}
	m := &metrics{config: config, logger: logger}
	for r := reasonNoSource; r < numReasons; r++ {
		m.failures[r] = failures.WithLabelValues(config, reasonNames[r])
		m.discarded[r] = discarded.WithLabelValues(config, reasonNames[r])
	}
	return m, nil
}

func (m *metrics) fail(r reason, sample string) {
	m.failures[r].Inc()
	if m.logger == nil {
		return
	}
	const maxSample = 256
	if len(sample) > maxSample {
		sample = sample[:maxSample]
	}
	if allowed, suppressed := m.lim.allow(); allowed {
		m.logger.Warn("parse failure: "+reasonHelp[r], "config", m.config, "reason", reasonNames[r],
			"sample", sample, "suppressedSinceLastWarning", suppressed)
	}
}

func (m *metrics) discard(r reason) { m.discarded[r].Inc() }
