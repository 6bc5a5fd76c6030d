package containerstdout

import (
	"context"
	"sync"

	"github.com/sluicelog/sluice/agent/pipeline"
)

// metaFields turns the container metadata the file tailer attached as batch
// tags (_pod_name_, _namespace_, _container_name_, _image_name_, _pod_uid_,
// _container_ip_, label and env tags) into fields of every event. Logtail
// sends container stdout metadata as log contents, and the default
// Kubernetes index indexes them as plain keys, so dashboards query
// `_pod_name_: web-1`, not `__tag__:_pod_name_: web-1`. __path__ stays a tag.
//
// The batch is rebuilt into a pooled one (events' fields are contiguous in a
// batch, so fields cannot be appended in place); stdout rates make the copy
// cheap next to decoding.
type metaFields struct {
	next pipeline.Consumer
	pool sync.Pool
}

func newMetaFields(next pipeline.Consumer) *metaFields {
	return &metaFields{next: next, pool: sync.Pool{New: func() any { return pipeline.NewBatch() }}}
}

// keepAsTag lists the tags that stay batch tags.
func keepAsTag(key string) bool { return key == "__path__" }

func (m *metaFields) Consume(ctx context.Context, b *pipeline.Batch) error {
	var meta []pipeline.Field
	for _, t := range b.Tags {
		if !keepAsTag(t.Key) {
			meta = append(meta, t)
		}
	}
	if len(meta) == 0 {
		return m.next.Consume(ctx, b)
	}
	nb := m.pool.Get().(*pipeline.Batch)
	defer func() {
		nb.Reset()
		m.pool.Put(nb)
	}()
	nb.Topic, nb.Source, nb.Ack = b.Topic, b.Source, b.Ack
	for _, t := range b.Tags {
		if keepAsTag(t.Key) {
			nb.AddTag(t.Key, t.Value)
		}
	}
	for i := range b.Events {
		e := &b.Events[i]
		nb.BeginEvent(e.Time, e.TimeNs)
		for _, f := range e.Fields {
			nb.AddFieldString(f.Key, f.Value)
		}
		for _, f := range meta {
			nb.AddFieldString(f.Key, f.Value)
		}
		nb.EndEvent()
	}
	return m.next.Consume(ctx, nb)
}
