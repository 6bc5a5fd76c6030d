// Package promreg registers Prometheus collectors so that several instances
// of a component (one per pipeline or logstore) can share a registerer:
// registering a collector that already exists returns the existing one
// instead of failing, so two pipelines writing to the same destination add
// to the same series.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg (nil: not registered) and returns the
// collector to use: c, or the identical collector registered before.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	got, err := Reuse(reg, c)
	if err != nil {
		// A conflicting definition (same name, other labels) is a
		// programming error in the caller's label set; keep the
		// unregistered collector so the component still works, and its
		// values are simply not exported.
		return c
	}
	return got
}

// Reuse is Register for callers that report a conflicting definition: the
// error names the metric that could not be registered.
func Reuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metrics: %w", err)
}
