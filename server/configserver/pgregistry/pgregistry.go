// Package pgregistry keeps the config server's agent registry in
// PostgreSQL, so that with several sluice-servers on one database
// (--meta postgres://) ListMachines on any of them lists the agents whose
// heartbeats reached any other (configserver.SharedRegistry). One row per
// agent instance: its last heartbeat and the record configserver encodes.
package pgregistry

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluicelog/sluice/internal/pgschema"
	"github.com/sluicelog/sluice/server/configserver"
)

// migrations are the schema steps of component "agents"; append, never edit.
var migrations = []string{
	`CREATE TABLE sluice_agents (
		instance_id text PRIMARY KEY,
		last_heartbeat timestamptz NOT NULL,
		record jsonb NOT NULL);
	CREATE INDEX sluice_agents_last_heartbeat ON sluice_agents (last_heartbeat);`,
}

// Registry is a configserver.SharedRegistry on a PostgreSQL pool.
type Registry struct {
	pool *pgxpool.Pool
}

var _ configserver.SharedRegistry = (*Registry)(nil)

// Open migrates the schema and returns the registry.
func Open(ctx context.Context, pool *pgxpool.Pool) (*Registry, error) {
	if err := pgschema.Migrate(ctx, pool, "agents", migrations); err != nil {
		return nil, fmt.Errorf("agent registry: %w", err)
	}
	return &Registry{pool: pool}, nil
}

// PutAgents upserts agents in one transaction (an older heartbeat never
// replaces a newer one: two servers may write the same agent) and deletes
// agents not heard since expired.
func (r *Registry) PutAgents(ctx context.Context, agents []configserver.SharedAgent, expired time.Time) error {
	b := &pgx.Batch{}
	for _, a := range agents {
		b.Queue(`INSERT INTO sluice_agents (instance_id, last_heartbeat, record) VALUES ($1, $2, $3)
			ON CONFLICT (instance_id) DO UPDATE SET last_heartbeat = EXCLUDED.last_heartbeat, record = EXCLUDED.record
			WHERE sluice_agents.last_heartbeat <= EXCLUDED.last_heartbeat`, a.InstanceID, a.LastHeartbeat, a.Record)
	}
	b.Queue(`DELETE FROM sluice_agents WHERE last_heartbeat < $1`, expired)
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("agent registry: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("agent registry: write %d agents: %w", len(agents), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("agent registry: %w", err)
	}
	return nil
}

// Agents returns the agents heard since.
func (r *Registry) Agents(ctx context.Context, since time.Time) ([]configserver.SharedAgent, error) {
	rows, err := r.pool.Query(ctx, `SELECT instance_id, last_heartbeat, record FROM sluice_agents WHERE last_heartbeat >= $1`, since)
	if err != nil {
		return nil, fmt.Errorf("agent registry: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (configserver.SharedAgent, error) {
		var a configserver.SharedAgent
		err := row.Scan(&a.InstanceID, &a.LastHeartbeat, &a.Record)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("agent registry: %w", err)
	}
	return out, nil
}
