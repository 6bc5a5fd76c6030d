package jsonfile

import (
	"context"
	"slices"
	"sort"

	"github.com/sluicelog/sluice/server/meta"
)

// consumerGroupState is a consumer group and its checkpoints.
type consumerGroupState struct {
	Group       meta.ConsumerGroup      `json:"group"`
	Checkpoints map[int]meta.Checkpoint `json:"checkpoints,omitempty"`
}

// consumerGroup finds a group; the project and logstore must exist.
func consumerGroup(st *state, project, ls, name string) (*projectState, *consumerGroupState, error) {
	p, _, err := logstore(st, project, ls)
	if err != nil {
		return nil, nil, err
	}
	g := p.ConsumerGroups[ls][name]
	if g == nil {
		return p, nil, &meta.NotFoundError{Kind: meta.KindConsumerGroup, Name: name}
	}
	return p, g, nil
}

// CreateConsumerGroup implements meta.Store.
func (s *Store) CreateConsumerGroup(ctx context.Context, g meta.ConsumerGroup) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := consumerGroup(st, g.Project, g.Logstore, g.Name)
		if err == nil {
			return &meta.ExistsError{Kind: meta.KindConsumerGroup, Name: g.Name}
		}
		if p == nil {
			return err
		}
		if p.ConsumerGroups[g.Logstore] == nil {
			p.ConsumerGroups[g.Logstore] = map[string]*consumerGroupState{}
		}
		p.ConsumerGroups[g.Logstore][g.Name] = &consumerGroupState{Group: g}
		return nil
	})
}

// GetConsumerGroup implements meta.Store.
func (s *Store) GetConsumerGroup(ctx context.Context, project, ls, name string) (meta.ConsumerGroup, error) {
	var out meta.ConsumerGroup
	err := s.read(ctx, func(st *state) error {
		_, g, err := consumerGroup(st, project, ls, name)
		if err == nil {
			out = g.Group
		}
		return err
	})
	return out, err
}

// UpdateConsumerGroup implements meta.Store.
func (s *Store) UpdateConsumerGroup(ctx context.Context, g meta.ConsumerGroup) error {
	return s.mutate(ctx, func(st *state) error {
		_, cur, err := consumerGroup(st, g.Project, g.Logstore, g.Name)
		if err == nil {
			cur.Group = g
		}
		return err
	})
}

// DeleteConsumerGroup implements meta.Store.
func (s *Store) DeleteConsumerGroup(ctx context.Context, project, ls, name string) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := consumerGroup(st, project, ls, name)
		if err == nil {
			delete(p.ConsumerGroups[ls], name)
		}
		return err
	})
}

// ListConsumerGroups implements meta.Store.
func (s *Store) ListConsumerGroups(ctx context.Context, project, ls string) ([]meta.ConsumerGroup, error) {
	out := []meta.ConsumerGroup{}
	err := s.read(ctx, func(st *state) error {
		p, _, err := logstore(st, project, ls)
		if err != nil {
			return err
		}
		for _, n := range sortedKeys(p.ConsumerGroups[ls]) {
			out = append(out, p.ConsumerGroups[ls][n].Group)
		}
		return nil
	})
	return out, err
}

// PutCheckpoint implements meta.Store.
func (s *Store) PutCheckpoint(ctx context.Context, project, ls, group string, cp meta.Checkpoint) error {
	return s.mutate(ctx, func(st *state) error {
		_, g, err := consumerGroup(st, project, ls, group)
		if err != nil {
			return err
		}
		if g.Checkpoints == nil {
			g.Checkpoints = map[int]meta.Checkpoint{}
		}
		g.Checkpoints[cp.Shard] = cp
		return nil
	})
}

// Checkpoints implements meta.Store.
func (s *Store) Checkpoints(ctx context.Context, project, ls, group string) ([]meta.Checkpoint, error) {
	out := []meta.Checkpoint{}
	err := s.read(ctx, func(st *state) error {
		_, g, err := consumerGroup(st, project, ls, group)
		if err != nil {
			return err
		}
		for _, cp := range g.Checkpoints {
			out = append(out, cp)
		}
		slices.SortFunc(out, func(a, b meta.Checkpoint) int { return a.Shard - b.Shard })
		return nil
	})
	return out, err
}

// --- documents (saved searches, dashboards) ---

// CreateDocument implements meta.Store.
func (s *Store) CreateDocument(ctx context.Context, d meta.Document) error {
	return s.mutate(ctx, func(st *state) error {
		p, err := project(st, d.Project)
		if err != nil {
			return err
		}
		if _, ok := p.Documents[d.Kind][d.Name]; ok {
			return &meta.ExistsError{Kind: d.Kind, Name: d.Name}
		}
		if p.Documents[d.Kind] == nil {
			p.Documents[d.Kind] = map[string]meta.Document{}
		}
		p.Documents[d.Kind][d.Name] = d
		return nil
	})
}

func document(st *state, proj string, kind meta.Kind, name string) (*projectState, meta.Document, error) {
	p, err := project(st, proj)
	if err != nil {
		return nil, meta.Document{}, err
	}
	d, ok := p.Documents[kind][name]
	if !ok {
		return p, d, &meta.NotFoundError{Kind: kind, Name: name}
	}
	return p, d, nil
}

// GetDocument implements meta.Store.
func (s *Store) GetDocument(ctx context.Context, proj string, kind meta.Kind, name string) (meta.Document, error) {
	var out meta.Document
	err := s.read(ctx, func(st *state) error {
		var err error
		_, out, err = document(st, proj, kind, name)
		return err
	})
	return out, err
}

// UpdateDocument implements meta.Store.
func (s *Store) UpdateDocument(ctx context.Context, d meta.Document) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := document(st, d.Project, d.Kind, d.Name)
		if err == nil {
			p.Documents[d.Kind][d.Name] = d
		}
		return err
	})
}

// DeleteDocument implements meta.Store.
func (s *Store) DeleteDocument(ctx context.Context, proj string, kind meta.Kind, name string) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := document(st, proj, kind, name)
		if err == nil {
			delete(p.Documents[kind], name)
		}
		return err
	})
}

// ListDocuments implements meta.Store.
func (s *Store) ListDocuments(ctx context.Context, proj string, kind meta.Kind, page meta.Page) ([]meta.Document, int, error) {
	var out []meta.Document
	var total int
	err := s.read(ctx, func(st *state) error {
		p, err := project(st, proj)
		if err != nil {
			return err
		}
		names := make([]string, 0, len(p.Documents[kind]))
		for n := range p.Documents[kind] {
			names = append(names, n)
		}
		sort.Strings(names)
		total = len(names)
		for _, n := range meta.Apply(names, page) {
			out = append(out, p.Documents[kind][n])
		}
		return nil
	})
	if out == nil {
		out = []meta.Document{}
	}
	return out, total, err
}
