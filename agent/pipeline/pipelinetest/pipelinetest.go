// Package pipelinetest is test support for pipeline stages, as
// net/http/httptest is for HTTP handlers: Recorder is a pipeline.Consumer
// that keeps a copy of every event it takes, so a test of an input can
// check what reached the next stage.
package pipelinetest

import (
	"context"
	"strings"
	"sync"

	"github.com/sluicelog/sluice/agent/pipeline"
)

// Event is one event as a Recorder took it, with its batch's topic and
// tags. Every string is a copy: it stays valid after the batch is reused.
type Event struct {
	Time, TimeNs uint32
	Fields       []pipeline.Field // in the order the stage added them
	Topic        string
	Tags         []pipeline.Field // the batch's tags, __path__ included
}

// Field is the value of the field named key ("" when absent).
func (e Event) Field(key string) string { return lookup(e.Fields, key) }

// Content is the value of the "content" field: the whole line when nothing
// parsed it.
func (e Event) Content() string { return e.Field("content") }

// FieldMap is the fields by key.
func (e Event) FieldMap() map[string]string { return toMap(e.Fields) }

// Tag is the value of the batch tag named key ("" when absent).
func (e Event) Tag(key string) string { return lookup(e.Tags, key) }

// Path is the __path__ tag: the file the event was read from.
func (e Event) Path() string { return e.Tag("__path__") }

// TagMap is the batch tags by key.
func (e Event) TagMap() map[string]string { return toMap(e.Tags) }

// Recorder is a pipeline.Consumer that records every event it takes and
// acks each batch. The zero value records and acks with nil; Gate and
// AckErr make it block or fail like a slow or failing output. It is safe
// for concurrent use.
type Recorder struct {
	// Gate, when not nil, makes Consume wait for one receive per batch
	// (or for ctx to end): back-pressure from a blocked output.
	Gate chan struct{}
	// AckErr, when not nil, gives the error batch n (counting from 1) is
	// acked with; the events of a batch acked with an error are not
	// recorded, as an output that failed delivered nothing.
	AckErr func(n int) error

	mu      sync.Mutex
	events  []Event
	batches int
}

// Consume records b's events and acks b.
func (r *Recorder) Consume(ctx context.Context, b *pipeline.Batch) error {
	if r.Gate != nil {
		select {
		case <-r.Gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	r.batches++
	var err error
	if r.AckErr != nil {
		err = r.AckErr(r.batches)
	}
	if err == nil {
		topic, tags := strings.Clone(b.Topic), clone(b.Tags)
		for _, e := range b.Events {
			r.events = append(r.events, Event{Time: e.Time, TimeNs: e.TimeNs, Fields: clone(e.Fields), Topic: topic, Tags: tags})
		}
	}
	r.mu.Unlock()
	if b.Ack != nil {
		b.Ack.Done(err)
	}
	return nil
}

// Events are the events recorded so far, in the order they came.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// Contents are the "content" fields of Events.
func (r *Recorder) Contents() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = e.Content()
	}
	return out
}

// Batches is how many batches Consume took.
func (r *Recorder) Batches() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batches
}

func clone(fs []pipeline.Field) []pipeline.Field {
	out := make([]pipeline.Field, len(fs))
	for i, f := range fs {
		out[i] = pipeline.Field{Key: strings.Clone(f.Key), Value: strings.Clone(f.Value)}
	}
	return out
}

func lookup(fs []pipeline.Field, key string) string {
	for _, f := range fs {
		if f.Key == key {
			return f.Value
		}
	}
	return ""
}

func toMap(fs []pipeline.Field) map[string]string {
	m := make(map[string]string, len(fs))
	for _, f := range fs {
		m[f.Key] = f.Value
	}
	return m
}
