// Package cputime measures the process's CPU time for benchmarks. They
// report throughput per CPU-second next to ns/op because the machines they
// run on are shared and wall time mostly measures the neighbours.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Now is the process's user+system CPU time so far (0 if getrusage fails).
func Now() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportThroughput adds a MiB/cpu-s metric to b for bytesPerOp processed
// b.N times since start (a Now reading); nothing when no CPU time passed.
func ReportThroughput(b *testing.B, start time.Duration, bytesPerOp int64) {
	b.Helper()
	cpu := Now() - start
	if cpu <= 0 {
		return
	}
	b.ReportMetric(float64(bytesPerOp)*float64(b.N)/(1<<20)/cpu.Seconds(), "MiB/cpu-s")
}
