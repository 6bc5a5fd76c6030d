package multiline

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
	if m.lines, err = register(reg, m.lines); err != nil {
		return nil, err
	}
	if m.split, err = register(reg, m.split); err != nil {
		return nil, err
	}
	return m, nil
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("register multiline metrics: %w", err)
	}
	return c, nil
}

// Counters returns the counters of one collection config, for Config.Counters.
func (m *Metrics) Counters(config string) Counters {
	return Counters{
		UnmatchedLines: m.lines.WithLabelValues(config, "unmatched"),
		DiscardedLines: m.lines.WithLabelValues(config, "discarded"),
		SplitEvents:    m.split.WithLabelValues(config),
	}
}
