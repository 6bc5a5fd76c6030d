// Package promreg registers output metrics so that several instances of an
// output (one per pipeline) can share a registerer: registering a collector
// that already exists returns the existing one instead of failing, so two
// pipelines writing to the same destination add to the same series.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg (nil: not registered) and returns the
// collector to use: c, or the identical collector registered before.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A conflicting definition (same name, other labels) is a programming
		// error in the caller's label set; keep the unregistered collector so
		// the output still works, and its values are simply not exported.
	}
	return c
}
