package duckdb

// The memory guard: a hard cap on what DuckDB allocates.
//
// DuckDB's memory_limit governs its buffer manager (hash tables, sorts,
// aggregate states, materialized results), not the vectors of values its
// expressions compute: a query such as lpad(x, 1048576, ' ') over 2,048
// rows builds 2 GiB in one step that memory_limit never sees. Every such
// allocation still goes through DuckDB's Allocator, which in the static
// library calls JemallocExtension::Allocate/Reallocate/Free. The linker's
// --wrap routes those three calls through memguard.c, which counts the
// bytes in use and refuses an allocation that would take them past the
// limit; DuckDB then throws its OutOfMemoryException (it checks every
// allocation) and only the query that asked fails, with an "Out of Memory
// Error" the store answers as store.ErrQueryLimit. Other allocations
// (operator new for plans and C++ strings) are not counted: the query
// sandbox bounds what makes them large (the number of CTEs, subqueries,
// joins, the size of built strings).
//
// No library offers this: DuckDB has no per-process or per-query limit on
// its vectors, and its C API takes no allocator. The symbols are those of
// the duckdb-go-bindings static build (DuckDB 1.4); TestMemoryGuard fails
// if an upgrade renames them (the guard would count nothing).

/*
#cgo LDFLAGS: -Wl,--wrap=_ZN6duckdb17JemallocExtension8AllocateEPNS_20PrivateAllocatorDataEm -Wl,--wrap=_ZN6duckdb17JemallocExtension4FreeEPNS_20PrivateAllocatorDataEPhm -Wl,--wrap=_ZN6duckdb17JemallocExtension10ReallocateEPNS_20PrivateAllocatorDataEPhmm
void sluice_memguard_raise_limit(long long n);
long long sluice_memguard_limit(void);
long long sluice_memguard_used(void);
long long sluice_memguard_peak(void);
long long sluice_memguard_refused(void);
void sluice_memguard_hold(long long n);
*/
import "C"

import "github.com/prometheus/client_golang/prometheus"

// memguardRaiseLimit sets the limit to n bytes unless it is already
// higher (0 = none).
func memguardRaiseLimit(n int64) { C.sluice_memguard_raise_limit(C.longlong(n)) }

func memguardLimit() int64   { return int64(C.sluice_memguard_limit()) }
func memguardUsed() int64    { return int64(C.sluice_memguard_used()) }
func memguardPeak() int64    { return int64(C.sluice_memguard_peak()) }
func memguardRefused() int64 { return int64(C.sluice_memguard_refused()) }

// memguardHold counts n more bytes in use (fewer when negative), as if
// something outside the queries held them: tests fill DuckDB's memory
// with it. (cgo cannot be used from a _test.go file.)
func memguardHold(n int64) { C.sluice_memguard_hold(C.longlong(n)) }

func memguardCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_store_duckdb_memory_bytes",
			Help: "Bytes DuckDB has allocated through its allocator (all of its data: buffer manager and computed vectors)."},
			func() float64 { return float64(memguardUsed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_store_duckdb_memory_peak_bytes",
			Help: "Highest sluice_store_duckdb_memory_bytes since the process started."},
			func() float64 { return float64(memguardPeak()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_store_duckdb_memory_limit_bytes",
			Help: "The hard limit on DuckDB's allocations (MemoryHardLimit); past it allocations fail and their query gets a query-memory error."},
			func() float64 { return float64(memguardLimit()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_store_duckdb_allocations_refused_total",
			Help: "DuckDB allocations refused by the hard memory limit (each fails a query or a compaction)."},
			func() float64 { return float64(memguardRefused()) }),
	}
}
