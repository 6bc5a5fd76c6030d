#include <stdatomic.h>
#include <stddef.h>

// Wrappers around DuckDB's allocator: see memguard.go. JemallocExtension's
// Allocate, Free and Reallocate are static member functions, so plain C
// functions with the same parameters stand in for them.
typedef unsigned char data_t;

extern data_t *__real__ZN6duckdb17JemallocExtension8AllocateEPNS_20PrivateAllocatorDataEm(void *pd, unsigned long size);
extern void __real__ZN6duckdb17JemallocExtension4FreeEPNS_20PrivateAllocatorDataEPhm(void *pd, data_t *p, unsigned long size);
extern data_t *__real__ZN6duckdb17JemallocExtension10ReallocateEPNS_20PrivateAllocatorDataEPhmm(void *pd, data_t *p, unsigned long old_size, unsigned long size);

static _Atomic long long sluice_used;
static _Atomic long long sluice_limit;
static _Atomic long long sluice_peak;
static _Atomic long long sluice_refused;

static int reserve(long long n) {
	long long lim = atomic_load_explicit(&sluice_limit, memory_order_relaxed);
	long long now = atomic_fetch_add_explicit(&sluice_used, n, memory_order_relaxed) + n;
	if (lim > 0 && n > 0 && now > lim) {
		atomic_fetch_sub_explicit(&sluice_used, n, memory_order_relaxed);
		atomic_fetch_add_explicit(&sluice_refused, 1, memory_order_relaxed);
		return 0;
	}
	long long p = atomic_load_explicit(&sluice_peak, memory_order_relaxed);
	while (now > p && !atomic_compare_exchange_weak_explicit(&sluice_peak, &p, now, memory_order_relaxed, memory_order_relaxed)) {
	}
	return 1;
}

data_t *__wrap__ZN6duckdb17JemallocExtension8AllocateEPNS_20PrivateAllocatorDataEm(void *pd, unsigned long size) {
	if (!reserve((long long)size)) {
		return NULL;
	}
	data_t *p = __real__ZN6duckdb17JemallocExtension8AllocateEPNS_20PrivateAllocatorDataEm(pd, size);
	if (!p) {
		atomic_fetch_sub_explicit(&sluice_used, (long long)size, memory_order_relaxed);
	}
	return p;
}

void __wrap__ZN6duckdb17JemallocExtension4FreeEPNS_20PrivateAllocatorDataEPhm(void *pd, data_t *p, unsigned long size) {
	__real__ZN6duckdb17JemallocExtension4FreeEPNS_20PrivateAllocatorDataEPhm(pd, p, size);
	atomic_fetch_sub_explicit(&sluice_used, (long long)size, memory_order_relaxed);
}

data_t *__wrap__ZN6duckdb17JemallocExtension10ReallocateEPNS_20PrivateAllocatorDataEPhmm(void *pd, data_t *p, unsigned long old_size, unsigned long size) {
	long long delta = (long long)size - (long long)old_size;
	if (!reserve(delta)) {
		return NULL;
	}
	data_t *q = __real__ZN6duckdb17JemallocExtension10ReallocateEPNS_20PrivateAllocatorDataEPhmm(pd, p, old_size, size);
	if (!q) {
		atomic_fetch_sub_explicit(&sluice_used, delta, memory_order_relaxed);
	}
	return q;
}

void sluice_memguard_raise_limit(long long n) {
	long long cur = atomic_load(&sluice_limit);
	while (n > cur && !atomic_compare_exchange_weak(&sluice_limit, &cur, n)) {
	}
}
long long sluice_memguard_limit(void) { return atomic_load(&sluice_limit); }
long long sluice_memguard_used(void) { return atomic_load(&sluice_used); }
long long sluice_memguard_peak(void) { return atomic_load(&sluice_peak); }
long long sluice_memguard_refused(void) { return atomic_load(&sluice_refused); }
// Tests only: n more bytes in use (n < 0: fewer), as if held by no query.
void sluice_memguard_hold(long long n) { atomic_fetch_add(&sluice_used, n); }
