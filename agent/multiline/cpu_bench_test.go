package multiline

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time. Benchmarks report
// throughput per CPU-second next to ns/op because the machines they run on
// are shared and wall time mostly measures the neighbours.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPUThroughput adds a MiB/cpu-s metric for bytesPerOp processed
// b.N times since start.
func reportCPUThroughput(b *testing.B, start time.Duration, bytesPerOp int64) {
	cpu := cpuTime() - start
	if cpu <= 0 {
		return
	}
	b.ReportMetric(float64(bytesPerOp)*float64(b.N)/(1<<20)/cpu.Seconds(), "MiB/cpu-s")
}
