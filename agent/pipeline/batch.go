// Package pipeline defines what flows through sluice-agent and the contracts
// between its stages: inputs produce Batches, processors change them in place,
// outputs deliver them and report back through the batch's Ack.
//
// A Batch is one future LogGroup: events from one stream (one file, one
// container stream) in order, sharing topic, source and tags. Field strings
// are carved out of the batch's own arena, so building a batch costs no
// allocation per event once the batch has been used a few times.
package pipeline

import (
	"context"
	"unsafe"
)

// Field is one key/value of an event or a batch tag. The strings may alias
// the batch arena: they are valid until the batch is Reset or released.
type Field struct {
	Key, Value string
}

// Event is one log event.
type Event struct {
	Time   uint32 // unix seconds
	TimeNs uint32 // nanoseconds within Time
	Fields []Field
}

// Ack is how the stage that takes final responsibility for a batch reports
// the outcome. Done(nil) means the batch is durably delivered (accepted by the
// backend, written to the disk buffer or to the dead-letter store); Done(err)
// means it was not, and the input must not advance its checkpoint past it.
// Done is called exactly once per batch, from any goroutine.
type Ack interface {
	Done(err error)
}

// AckFunc adapts a function to Ack.
type AckFunc func(err error)

// Done calls f(err).
func (f AckFunc) Done(err error) { f(err) }

// Consumer is the one-method contract between stages.
//
// Consume takes b. A nil return means the consumer took responsibility: it
// will call b.Ack exactly once (possibly after returning). After Consume
// returns, the caller may Reset and reuse b, so a consumer that works
// asynchronously must copy what it needs (outputs encode the batch) before
// returning; only b.Ack may be kept. A non-nil return means the batch was not
// taken, Ack will not be called by the consumer, and the caller still owns the
// outcome. Consume blocks to apply back-pressure and returns ctx.Err() when
// ctx ends first.
type Consumer interface {
	Consume(ctx context.Context, b *Batch) error
}

// ConsumerFunc adapts a function to Consumer.
type ConsumerFunc func(ctx context.Context, b *Batch) error

// Consume calls f(ctx, b).
func (f ConsumerFunc) Consume(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Batch is a group of events bound for one LogGroup. It is not safe for
// concurrent use.
//
// Events are built with BeginEvent, AddField…, then EndEvent (or AbortEvent
// to discard a half-built event, e.g. when a parser fails midway).
type Batch struct {
	Topic  string
	Source string
	Tags   []Field
	Events []Event
	// Ack receives the delivery outcome; nil when nobody waits for it.
	Ack Ack

	fields     []Field // backing store of every Event.Fields
	eventStart int     // index into fields where the open event began; -1 if none
	eventTime  [2]uint32
	arena      arena
	rawBytes   int
}

// NewBatch returns an empty batch.
func NewBatch() *Batch {
	return &Batch{eventStart: -1}
}

// Reset empties b for reuse, keeping its buffers. Strings handed out before
// Reset must no longer be used.
func (b *Batch) Reset() {
	b.Topic, b.Source = "", ""
	b.Tags = b.Tags[:0]
	clear(b.Events) // drop references to field slices
	b.Events = b.Events[:0]
	b.Ack = nil
	clear(b.fields)
	b.fields = b.fields[:0]
	b.eventStart = -1
	b.arena.reset()
	b.rawBytes = 0
}

// Len is the number of complete events.
func (b *Batch) Len() int { return len(b.Events) }

// Size is the approximate payload size in bytes (keys and values of events
// and tags); outputs use it to cut batches and account memory.
func (b *Batch) Size() int { return b.rawBytes }

// AddTag appends a batch-level tag, copying key and value into the arena.
func (b *Batch) AddTag(key, value string) {
	b.Tags = append(b.Tags, Field{Key: b.arena.copyString(key), Value: b.arena.copyString(value)})
	b.rawBytes += len(key) + len(value)
}

// BeginEvent starts a new event with the given timestamp. An event left open
// is discarded.
func (b *Batch) BeginEvent(sec, nsec uint32) {
	if b.eventStart >= 0 {
		b.AbortEvent()
	}
	b.eventStart = len(b.fields)
	b.eventTime = [2]uint32{sec, nsec}
}

// SetEventTime changes the timestamp of the open event (parsers learn the
// time after they have started adding fields).
func (b *Batch) SetEventTime(sec, nsec uint32) { b.eventTime = [2]uint32{sec, nsec} }

// AddField appends key and a copy of value to the open event. key is not
// copied: it must outlive the batch (config-owned or constant keys).
func (b *Batch) AddField(key string, value []byte) {
	b.fields = append(b.fields, Field{Key: key, Value: b.arena.copyBytes(value)})
	b.rawBytes += len(key) + len(value)
}

// AddFieldCopy appends copies of key and value to the open event.
func (b *Batch) AddFieldCopy(key, value []byte) {
	b.fields = append(b.fields, Field{Key: b.arena.copyBytes(key), Value: b.arena.copyBytes(value)})
	b.rawBytes += len(key) + len(value)
}

// AddFieldString appends key and value without copying; both must outlive
// the batch.
func (b *Batch) AddFieldString(key, value string) {
	b.fields = append(b.fields, Field{Key: key, Value: value})
	b.rawBytes += len(key) + len(value)
}

// OpenFields returns the fields added to the open event so far; a parser may
// overwrite values in place (e.g. masking) before EndEvent.
func (b *Batch) OpenFields() []Field {
	if b.eventStart < 0 {
		return nil
	}
	return b.fields[b.eventStart:]
}

// EndEvent completes the open event.
func (b *Batch) EndEvent() {
	if b.eventStart < 0 {
		return
	}
	f := b.fields[b.eventStart:len(b.fields):len(b.fields)]
	b.Events = append(b.Events, Event{Time: b.eventTime[0], TimeNs: b.eventTime[1], Fields: f})
	b.eventStart = -1
}

// AbortEvent discards the open event.
func (b *Batch) AbortEvent() {
	if b.eventStart < 0 {
		return
	}
	for _, f := range b.fields[b.eventStart:] {
		b.rawBytes -= len(f.Key) + len(f.Value)
	}
	clear(b.fields[b.eventStart:])
	b.fields = b.fields[:b.eventStart]
	b.eventStart = -1
}

// Filter keeps only the events for which keep returns true, in order.
func (b *Batch) Filter(keep func(*Event) bool) {
	n := 0
	for i := range b.Events {
		if keep(&b.Events[i]) {
			b.Events[n] = b.Events[i]
			n++
		} else {
			for _, f := range b.Events[i].Fields {
				b.rawBytes -= len(f.Key) + len(f.Value)
			}
		}
	}
	clear(b.Events[n:])
	b.Events = b.Events[:n]
}

// CopyString copies s into the batch arena and returns the copy, valid until
// Reset. Processors use it for values they compute.
func (b *Batch) CopyString(s string) string { return b.arena.copyString(s) }

// CopyBytes copies p into the batch arena and returns it as a string.
func (b *Batch) CopyBytes(p []byte) string { return b.arena.copyBytes(p) }

// arena hands out strings carved from large chunks. A chunk is never
// reallocated once strings point into it, so handed-out strings stay valid
// until reset; reset keeps the chunks for reuse, so a batch that is reused
// reaches zero allocations per event.
type arena struct {
	chunks [][]byte // chunks[cur] is being filled; later ones are spare
	cur    int
}

const arenaChunk = 64 << 10

func (a *arena) reset() {
	for i := range a.chunks[:min(a.cur+1, len(a.chunks))] {
		a.chunks[i] = a.chunks[i][:0]
	}
	a.cur = 0
}

func (a *arena) copyBytes(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	if len(p) > arenaChunk/4 {
		// Big values get their own allocation, so one huge line does not
		// waste the rest of a chunk.
		s := make([]byte, len(p))
		copy(s, p)
		return unsafe.String(&s[0], len(s))
	}
	if len(a.chunks) == 0 {
		a.chunks = append(a.chunks, make([]byte, 0, arenaChunk))
	}
	buf := a.chunks[a.cur]
	if len(buf)+len(p) > cap(buf) {
		a.cur++
		if a.cur == len(a.chunks) {
			a.chunks = append(a.chunks, make([]byte, 0, arenaChunk))
		}
		buf = a.chunks[a.cur]
	}
	start := len(buf)
	buf = append(buf, p...)
	a.chunks[a.cur] = buf
	return unsafe.String(&buf[start], len(p))
}

func (a *arena) copyString(s string) string {
	return a.copyBytes(unsafe.Slice(unsafe.StringData(s), len(s)))
}
