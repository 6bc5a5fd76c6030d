package buffer

import "sync"

// Quota bounds the segment files of several buffers together. Logtail's
// buffer_file_num and buffer_file_size bound the agent's whole disk buffer,
// while Sluice keeps one buffer per logstore: without a shared quota an
// agent with twenty logstores could fill twenty times the disk its
// operator allowed during an outage.
//
// Every open buffer holds at least one segment (the one it appends to),
// counted even when that goes over the limit; further segments are created
// only while the quota has room, otherwise Append waits (back-pressure,
// nothing dropped) until some buffer deletes a delivered segment.
type Quota struct {
	mu      sync.Mutex
	max     int
	used    int
	changed chan struct{} // closed and replaced when files are released
}

// NewQuota returns a quota of maxFiles segment files (0: 25, Logtail's
// buffer_file_num default).
func NewQuota(maxFiles int) *Quota {
	if maxFiles <= 0 {
		maxFiles = 25
	}
	return &Quota{max: maxFiles, changed: make(chan struct{})}
}

// Used returns the segment files counted now.
func (q *Quota) Used() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used
}

// take counts n files whatever the limit (segments found at Open, or a
// rollover that frees the segment it replaces).
func (q *Quota) take(n int) {
	q.mu.Lock()
	q.used += n
	q.mu.Unlock()
}

// tryTake counts one more file if the quota has room.
func (q *Quota) tryTake() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.used >= q.max {
		return false
	}
	q.used++
	return true
}

// release uncounts n files and wakes the buffers waiting for room.
func (q *Quota) release(n int) {
	if n == 0 {
		return
	}
	q.mu.Lock()
	q.used -= n
	close(q.changed)
	q.changed = make(chan struct{})
	q.mu.Unlock()
}

// waitCh is closed at the next release.
func (q *Quota) waitCh() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.changed
}
