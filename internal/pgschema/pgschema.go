// Package pgschema applies schema migrations to a PostgreSQL database: each
// component (metadata, segment catalog) has its own ordered list of SQL
// steps, and the database records how many of them it has applied. Several
// sluice-servers may start at once against one database, so migrating takes
// a transaction-scoped advisory lock: the first applies the missing steps,
// the others wait and then find nothing to do. A database migrated by a
// newer binary (more steps than this one knows) is refused, rather than used
// with a schema this binary does not understand.
//
// Why not a migration library: the steps are plain SQL applied in order,
// forwards only, in one transaction; the few lines here are all that needs.
package pgschema

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrate brings component's schema up to date by applying steps[n:],
// where n is the number of steps already applied, in one transaction.
func Migrate(ctx context.Context, pool *pgxpool.Pool, component string, steps []string) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("migrate %s schema: %w", component, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	h := fnv.New64a()
	h.Write([]byte("sluice-schema"))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
		return fmt.Errorf("migrate %s schema: lock: %w", component, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS sluice_schema (
		component text PRIMARY KEY, version integer NOT NULL)`); err != nil {
		return fmt.Errorf("migrate %s schema: %w", component, err)
	}
	var have int
	err = tx.QueryRow(ctx, "SELECT version FROM sluice_schema WHERE component = $1", component).Scan(&have)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("migrate %s schema: read version: %w", component, err)
	}
	if have > len(steps) {
		return fmt.Errorf("%s schema is at version %d, newer than this sluice-server knows (%d): upgrade sluice-server, or use another database", component, have, len(steps))
	}
	if have == len(steps) {
		return tx.Commit(ctx)
	}
	for i := have; i < len(steps); i++ {
		if _, err := tx.Exec(ctx, steps[i]); err != nil {
			return fmt.Errorf("migrate %s schema to version %d: %w", component, i+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO sluice_schema (component, version) VALUES ($1, $2)
		ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version`, component, len(steps)); err != nil {
		return fmt.Errorf("migrate %s schema: record version: %w", component, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate %s schema: commit: %w", component, err)
	}
	return nil
}
