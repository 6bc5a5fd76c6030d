package duckdb

import "sync"

// colPools recycles the column slices of loaded parts. A write's columns
// are large (about 2.5x its raw bytes) and live until the loader has
// written them; allocating them fresh for every write cost more in
// zeroing, page faults and GC than building the rows did.
type colPools struct {
	bytes  slicePool[byte]
	spans  slicePool[span]
	ints   slicePool[int64]
	floats slicePool[float64]
	bools  slicePool[bool]
}

type slicePool[T any] struct{ p sync.Pool }

// get returns an empty slice with room for n; a pooled slice that is too
// small is dropped (sizes follow the traffic).
func (sp *slicePool[T]) get(n int) []T {
	if v, ok := sp.p.Get().(*[]T); ok && cap(*v) >= n {
		return (*v)[:0]
	}
	return make([]T, 0, n)
}

func (sp *slicePool[T]) put(s []T) {
	if cap(s) == 0 {
		return
	}
	s = s[:0]
	sp.p.Put(&s)
}

// release returns a part's columns to the pools; the part must not be
// used afterwards. A nil pool does nothing.
func (cp *colPools) release(p *part) {
	if cp == nil {
		return
	}
	for i := range p.cols {
		c := &p.cols[i]
		cp.bytes.put(c.data)
		cp.spans.put(c.spans)
		cp.ints.put(c.ints)
		cp.floats.put(c.floats)
		cp.bools.put(c.null)
		*c = column{}
	}
}
