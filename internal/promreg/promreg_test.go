package promreg_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/promreg"
)

func counter(labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_test_total", Help: "h"}, labels)
}

func TestSecondInstanceSharesTheSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := promreg.Reuse(reg, counter("config"))
	require.NoError(t, err)
	b, err := promreg.Reuse(reg, counter("config"))
	require.NoError(t, err)
	a.WithLabelValues("x").Inc()
	b.WithLabelValues("x").Inc()
	require.Equal(t, 2.0, testutil.ToFloat64(a.WithLabelValues("x")), "both instances count into one series")
}

func TestConflictingDefinition(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := promreg.Reuse(reg, counter("config"))
	require.NoError(t, err)
	other := counter("config", "reason")
	_, err = promreg.Reuse(reg, other)
	require.ErrorContains(t, err, "register metrics")
	// Register keeps working with an unexported collector.
	require.Same(t, other, promreg.Register(reg, other))
}

func TestNilRegisterer(t *testing.T) {
	c := counter("config")
	got, err := promreg.Reuse(nil, c)
	require.NoError(t, err)
	require.Same(t, c, got)
}
