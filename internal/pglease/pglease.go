// Package pglease grants named leases in a PostgreSQL table, so that one
// of several sluice-servers at a time runs a job (compaction, alert
// evaluation). The table is the caller's: each component keeps its leases
// beside its own schema, with the columns name (primary key), holder and
// expires.
package pglease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is what TryLease needs of a pool or a connection.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// TryLease grants the lease name in table to holder for ttl when it is
// free, expired or already holder's (renewed). PostgreSQL's clock decides
// expiry, so the nodes' clocks need not agree. table is a constant of the
// caller's, never user input.
func TryLease(ctx context.Context, q Querier, table, name, holder string, ttl time.Duration) (bool, error) {
	var got string
	err := q.QueryRow(ctx, `INSERT INTO `+table+` (name, holder, expires)
		VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires = EXCLUDED.expires
			WHERE `+table+`.holder = EXCLUDED.holder OR `+table+`.expires < now()
		RETURNING holder`, name, holder, ttl.Milliseconds()).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // held by another, unexpired
	}
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", name, err)
	}
	return got == holder, nil
}
