package multiline

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/internal/promreg"
)

// Metrics is the counter family splitters report to:
// sluice_multiline_lines_total{config, reason="unmatched"|"discarded"} and
// sluice_multiline_split_events_total{config}.
type Metrics struct {
	lines *prometheus.CounterVec
	split *prometheus.CounterVec
}

// NewMetrics registers the counters with reg (nil: not registered). A
// registerer that already holds them (another input) is reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_multiline_lines_total",
			Help: "Lines that belonged to no multiline event, by config and what was done with them (unmatched: all such lines; discarded: of those, dropped).",
		}, []string{"config", "reason"}),
		split: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_multiline_split_events_total",
			Help: "Cuts of events longer than the maximum event size.",
		}, []string{"config"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.lines, err = promreg.Reuse(reg, m.lines); err != nil {
		return nil, fmt.Errorf("multiline: %w", err)
	}
	if m.split, err = promreg.Reuse(reg, m.split); err != nil {
		return nil, fmt.Errorf("multiline: %w", err)
	}
	return m, nil
}

// Counters returns the counters of one collection config, for Config.Counters.
func (m *Metrics) Counters(config string) Counters {
	return Counters{
		UnmatchedLines: m.lines.WithLabelValues(config, "unmatched"),
		DiscardedLines: m.lines.WithLabelValues(config, "discarded"),
		SplitEvents:    m.split.WithLabelValues(config),
	}
}
