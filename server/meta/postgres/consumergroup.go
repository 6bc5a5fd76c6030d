package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sluicelog/sluice/server/meta"
)

// missingGroup explains why a consumer group was not found.
func missingGroup(ctx context.Context, db q, project, logstore, name string) error {
	if err := needLogstore(ctx, db, project, logstore); err != nil {
		return err
	}
	return notFound(meta.KindConsumerGroup, name)
}

// CreateConsumerGroup implements meta.Store.
func (s *Store) CreateConsumerGroup(ctx context.Context, g meta.ConsumerGroup) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO meta_consumer_groups (project, logstore, name, body) VALUES ($1, $2, $3, $4)",
		g.Project, g.Logstore, g.Name, g)
	switch pgCode(err) {
	case uniqueViolation:
		return &meta.ExistsError{Kind: meta.KindConsumerGroup, Name: g.Name}
	case foreignKeyViolation:
		err = needLogstore(ctx, s.pool, g.Project, g.Logstore)
	}
	return wrap("create consumer group", err)
}

// GetConsumerGroup implements meta.Store.
func (s *Store) GetConsumerGroup(ctx context.Context, project, logstore, name string) (meta.ConsumerGroup, error) {
	var g meta.ConsumerGroup
	ok, err := getBody(ctx, s.pool, &g, "SELECT body FROM meta_consumer_groups WHERE project = $1 AND logstore = $2 AND name = $3",
		project, logstore, name)
	if err == nil && !ok {
		err = missingGroup(ctx, s.pool, project, logstore, name)
	}
	return g, wrap("get consumer group", err)
}

// UpdateConsumerGroup implements meta.Store.
func (s *Store) UpdateConsumerGroup(ctx context.Context, g meta.ConsumerGroup) error {
	tag, err := s.pool.Exec(ctx, "UPDATE meta_consumer_groups SET body = $4 WHERE project = $1 AND logstore = $2 AND name = $3",
		g.Project, g.Logstore, g.Name, g)
	if err == nil && tag.RowsAffected() == 0 {
		err = missingGroup(ctx, s.pool, g.Project, g.Logstore, g.Name)
	}
	return wrap("update consumer group", err)
}

// DeleteConsumerGroup implements meta.Store.
func (s *Store) DeleteConsumerGroup(ctx context.Context, project, logstore, name string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM meta_consumer_groups WHERE project = $1 AND logstore = $2 AND name = $3",
		project, logstore, name)
	if err == nil && tag.RowsAffected() == 0 {
		err = missingGroup(ctx, s.pool, project, logstore, name)
	}
	return wrap("delete consumer group", err)
}

func collectBodies[T any](rows pgx.Rows, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) {
		var v T
		var body []byte
		if err := r.Scan(&body); err != nil {
			return v, err
		}
		return v, json.Unmarshal(body, &v)
	})
	if out == nil {
		out = []T{}
	}
	return out, err
}

// ListConsumerGroups implements meta.Store.
func (s *Store) ListConsumerGroups(ctx context.Context, project, logstore string) ([]meta.ConsumerGroup, error) {
	var out []meta.ConsumerGroup
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := needLogstore(ctx, tx, project, logstore); err != nil {
			return err
		}
		var err error
		out, err = collectBodies[meta.ConsumerGroup](tx.Query(ctx, `SELECT body FROM meta_consumer_groups
			WHERE project = $1 AND logstore = $2 ORDER BY name COLLATE "C"`, project, logstore))
		return err
	})
	return out, wrap("list consumer groups", err)
}

// PutCheckpoint implements meta.Store.
func (s *Store) PutCheckpoint(ctx context.Context, project, logstore, group string, cp meta.Checkpoint) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO meta_checkpoints (project, logstore, grp, shard, body) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (project, logstore, grp, shard) DO UPDATE SET body = EXCLUDED.body`, project, logstore, group, cp.Shard, cp)
	if pgCode(err) == foreignKeyViolation {
		err = missingGroup(ctx, s.pool, project, logstore, group)
	}
	return wrap("put checkpoint", err)
}

// Checkpoints implements meta.Store.
func (s *Store) Checkpoints(ctx context.Context, project, logstore, group string) ([]meta.Checkpoint, error) {
	var out []meta.Checkpoint
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ok, err := exists(ctx, tx, "SELECT 1 FROM meta_consumer_groups WHERE project = $1 AND logstore = $2 AND name = $3", project, logstore, group)
		if err != nil {
			return err
		}
		if !ok {
			return missingGroup(ctx, tx, project, logstore, group)
		}
		out, err = collectBodies[meta.Checkpoint](tx.Query(ctx, `SELECT body FROM meta_checkpoints
			WHERE project = $1 AND logstore = $2 AND grp = $3 ORDER BY shard`, project, logstore, group))
		return err
	})
	return out, wrap("checkpoints", err)
}

// --- documents ---

// CreateDocument implements meta.Store.
func (s *Store) CreateDocument(ctx context.Context, d meta.Document) error {
	if !json.Valid(d.Raw) {
		return fmt.Errorf("%s %q: raw body is not valid JSON", d.Kind, d.Name)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO meta_documents (project, kind, name, raw, create_time, last_modify_time)
		VALUES ($1, $2, $3, $4, $5, $6)`, d.Project, string(d.Kind), d.Name, []byte(d.Raw), d.CreateTime, d.LastModifyTime)
	switch pgCode(err) {
	case uniqueViolation:
		return &meta.ExistsError{Kind: d.Kind, Name: d.Name}
	case foreignKeyViolation:
		return notFound(meta.KindProject, d.Project)
	}
	return wrap("create "+string(d.Kind), err)
}

func scanDocument(row pgx.Row, d *meta.Document) error {
	var raw []byte
	if err := row.Scan(&d.Name, &raw, &d.CreateTime, &d.LastModifyTime); err != nil {
		return err
	}
	d.Raw = json.RawMessage(bytes.Clone(raw))
	d.CreateTime, d.LastModifyTime = d.CreateTime.UTC(), d.LastModifyTime.UTC()
	return nil
}

// GetDocument implements meta.Store.
func (s *Store) GetDocument(ctx context.Context, project string, kind meta.Kind, name string) (meta.Document, error) {
	d := meta.Document{Project: project, Kind: kind}
	err := scanDocument(s.pool.QueryRow(ctx, `SELECT name, raw, create_time, last_modify_time FROM meta_documents
		WHERE project = $1 AND kind = $2 AND name = $3`, project, string(kind), name), &d)
	if errors.Is(err, pgx.ErrNoRows) {
		err = missing(ctx, s.pool, project, kind, name)
	}
	return d, wrap("get "+string(kind), err)
}

// UpdateDocument implements meta.Store.
func (s *Store) UpdateDocument(ctx context.Context, d meta.Document) error {
	if !json.Valid(d.Raw) {
		return fmt.Errorf("%s %q: raw body is not valid JSON", d.Kind, d.Name)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE meta_documents SET raw = $4, create_time = $5, last_modify_time = $6
		WHERE project = $1 AND kind = $2 AND name = $3`, d.Project, string(d.Kind), d.Name, []byte(d.Raw), d.CreateTime, d.LastModifyTime)
	if err == nil && tag.RowsAffected() == 0 {
		err = missing(ctx, s.pool, d.Project, d.Kind, d.Name)
	}
	return wrap("update "+string(d.Kind), err)
}

// DeleteDocument implements meta.Store.
func (s *Store) DeleteDocument(ctx context.Context, project string, kind meta.Kind, name string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM meta_documents WHERE project = $1 AND kind = $2 AND name = $3", project, string(kind), name)
	if err == nil && tag.RowsAffected() == 0 {
		err = missing(ctx, s.pool, project, kind, name)
	}
	return wrap("delete "+string(kind), err)
}

// ListDocuments implements meta.Store.
func (s *Store) ListDocuments(ctx context.Context, project string, kind meta.Kind, page meta.Page) ([]meta.Document, int, error) {
	var all []meta.Document
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := needProject(ctx, tx, project); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT name, raw, create_time, last_modify_time FROM meta_documents
			WHERE project = $1 AND kind = $2 ORDER BY name COLLATE "C"`, project, string(kind))
		if err != nil {
			return err
		}
		all, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (meta.Document, error) {
			d := meta.Document{Project: project, Kind: kind}
			return d, scanDocument(r, &d)
		})
		return err
	})
	if err != nil {
		return nil, 0, wrap("list "+string(kind), err)
	}
	out := meta.Apply(all, page)
	if out == nil {
		out = []meta.Document{}
	}
	return out, len(all), nil
}
