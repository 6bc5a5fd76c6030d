// Package pgconsumer keeps consumer-group coordination state (members,
// shard owners; server/consumer.Shared) in PostgreSQL, so consumers of
// one group may heartbeat to different sluice-servers. Each call is one
// short transaction holding the group's row lock: heartbeats of a group
// are serialised across servers, other groups are not affected. Time is
// the database's (clock_timestamp()), so servers' clocks need not agree.
package pgconsumer

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluicelog/sluice/internal/pgschema"
	"github.com/sluicelog/sluice/server/consumer"
)

var migrations = []string{
	`CREATE TABLE consumer_group_state (
		project text NOT NULL, logstore text NOT NULL, grp text NOT NULL, state bytea,
		PRIMARY KEY (project, logstore, grp));`,
}

// Backend is the PostgreSQL consumer.Backend.
type Backend struct{ pool *pgxpool.Pool }

var _ consumer.Backend = (*Backend)(nil)

// Open migrates the schema in the pool's database. The pool stays the
// caller's.
func Open(ctx context.Context, pool *pgxpool.Pool) (*Backend, error) {
	if err := pgschema.Migrate(ctx, pool, "consumer", migrations); err != nil {
		return nil, fmt.Errorf("consumer group state: %w", err)
	}
	return &Backend{pool: pool}, nil
}

// Update implements consumer.Backend.
func (b *Backend) Update(ctx context.Context, k consumer.GroupKey, fn func(state []byte, now time.Time) ([]byte, error)) error {
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		// A row to lock, also for a group with no state yet (two servers'
		// first heartbeats must not both start from nothing).
		if _, err := tx.Exec(ctx, `INSERT INTO consumer_group_state (project, logstore, grp) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, k.Project, k.Logstore, k.Group); err != nil {
			return err
		}
		var (
			state []byte
			now   time.Time
		)
		if err := tx.QueryRow(ctx, `SELECT state, clock_timestamp() FROM consumer_group_state
			WHERE project = $1 AND logstore = $2 AND grp = $3 FOR UPDATE`, k.Project, k.Logstore, k.Group).Scan(&state, &now); err != nil {
			return err
		}
		out, err := fn(state, now)
		if err != nil {
			return err
		}
		if out == nil {
			_, err = tx.Exec(ctx, `DELETE FROM consumer_group_state WHERE project = $1 AND logstore = $2 AND grp = $3`,
				k.Project, k.Logstore, k.Group)
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE consumer_group_state SET state = $4 WHERE project = $1 AND logstore = $2 AND grp = $3`,
			k.Project, k.Logstore, k.Group, out)
		return err
	})
	if err != nil {
		return fmt.Errorf("consumer group %s/%s/%s: %w", k.Project, k.Logstore, k.Group, err)
	}
	return nil
}
