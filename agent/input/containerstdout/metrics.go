package containerstdout

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/internal/promreg"
)

// Counters are what a Decoder counts; nil counters are skipped.
type Counters struct {
	// Malformed counts lines that were neither CRI nor Docker JSON (kept
	// raw as events).
	Malformed prometheus.Counter
	// Cut counts lines longer than MaxLogSize, cut into several events.
	Cut prometheus.Counter
	// Skipped counts records of a stream the config does not collect.
	Skipped prometheus.Counter
}

func (Counters) inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

// Metrics is the family container decoders report to:
// sluice_container_lines_total{config, reason="malformed"|"cut"|"stream_skipped"}.
type Metrics struct {
	lines *prometheus.CounterVec
}

// NewMetrics registers the counters with reg (nil: not registered); a
// registerer that already holds them is reused.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{lines: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_container_lines_total",
		Help: "Container log lines that needed special handling, by config and reason (malformed: neither CRI nor Docker JSON, kept raw; cut: longer than MaxLogSize, split; stream_skipped: stream not selected by Stdout/Stderr).",
	}, []string{"config", "reason"})}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.lines, err = promreg.Reuse(reg, m.lines); err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	return m, nil
}

// Counters returns one config's counters.
func (m *Metrics) Counters(config string) Counters {
	return Counters{
		Malformed: m.lines.WithLabelValues(config, "malformed"),
		Cut:       m.lines.WithLabelValues(config, "cut"),
		Skipped:   m.lines.WithLabelValues(config, "stream_skipped"),
	}
}
