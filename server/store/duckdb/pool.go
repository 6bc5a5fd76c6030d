package duckdb

import "sync"

// colPools recycles the columns of loaded parts, as whole sets (one pool
// operation per part). A write's columns are large (about 2.5x its raw
// bytes) and live until the loader has written them; allocating them
// fresh for every write cost more in zeroing, page faults and GC than
// building the rows did, and for small writes the per-slice pool traffic
// showed too.
type colPools struct{ p sync.Pool } // of *[]column

// get returns n empty columns, reusing a pooled set's slices.
func (cp *colPools) get(n int) []column {
	if cp == nil {
		return make([]column, n)
	}
	v, ok := cp.p.Get().(*[]column)
	if !ok {
		return make([]column, n)
	}
	cols := *v
	if cap(cols) >= n {
		cols = cols[:n]
	} else {
		cols = append(cols[:cap(cols)], make([]column, n-cap(cols))...)
	}
	for i := range cols {
		c := &cols[i]
		c.ints, c.floats, c.spans, c.data, c.null = c.ints[:0], c.floats[:0], c.spans[:0], c.data[:0], c.null[:0]
	}
	return cols
}

// release returns a part's columns to the pool; the part must not be used
// afterwards. A nil pool does nothing.
func (cp *colPools) release(p *part) {
	if cp == nil || p.cols == nil {
		return
	}
	cols := p.cols
	p.cols = nil
	cp.p.Put(&cols)
}

// room returns s (emptied) if it has room for n, else a new slice.
func room[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:0]
	}
	return make([]T, 0, n)
}
