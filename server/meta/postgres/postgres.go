// Package postgres is the metadata backend for several sluice-servers that
// share one PostgreSQL database (sluice-server --meta postgres://...): the
// same meta.Store as server/meta/jsonfile, so every node sees every
// project, logstore, machine group, config, key and console session at
// once, and a node can be added or removed without moving anything.
//
// Layout: one table per kind of object, keyed by project and name, with the
// object itself as a jsonb body (the API owns the fields; the tables only
// index and relate them) and foreign keys with ON DELETE CASCADE for what a
// delete takes along (a project's logstores, a logstore's index, a group's
// or config's applications). A Logtail config keeps its raw JSON as bytes,
// so fields Sluice does not interpret survive byte for byte. Lists sort
// with COLLATE "C" (byte order, as jsonfile sorts). Every mutation is one
// statement or one transaction, durable when it returns (PostgreSQL's
// commit). The schema is migrated at Open (internal/pgschema), under an
// advisory lock so that nodes starting together do not race.
package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluicelog/sluice/internal/pglease"
	"github.com/sluicelog/sluice/internal/pgschema"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/meta"
)

// migrations are the schema steps, applied in order; append, never edit.
var migrations = []string{
	`CREATE TABLE meta_projects (name text PRIMARY KEY, body jsonb NOT NULL);
	CREATE TABLE meta_logstores (
		project text NOT NULL REFERENCES meta_projects (name) ON DELETE CASCADE,
		name text NOT NULL, body jsonb NOT NULL, PRIMARY KEY (project, name));
	CREATE TABLE meta_indexes (
		project text NOT NULL, logstore text NOT NULL, body jsonb NOT NULL,
		PRIMARY KEY (project, logstore),
		FOREIGN KEY (project, logstore) REFERENCES meta_logstores (project, name) ON DELETE CASCADE);
	CREATE TABLE meta_machine_groups (
		project text NOT NULL REFERENCES meta_projects (name) ON DELETE CASCADE,
		name text NOT NULL, body jsonb NOT NULL, PRIMARY KEY (project, name));
	CREATE TABLE meta_configs (
		project text NOT NULL REFERENCES meta_projects (name) ON DELETE CASCADE,
		name text NOT NULL, raw bytea NOT NULL, create_time timestamptz NOT NULL, last_modify_time timestamptz NOT NULL,
		PRIMARY KEY (project, name));
	CREATE TABLE meta_applied (
		project text NOT NULL, grp text NOT NULL, config text NOT NULL,
		PRIMARY KEY (project, grp, config),
		FOREIGN KEY (project, grp) REFERENCES meta_machine_groups (project, name) ON DELETE CASCADE,
		FOREIGN KEY (project, config) REFERENCES meta_configs (project, name) ON DELETE CASCADE);
	CREATE TABLE meta_access_keys (id text PRIMARY KEY, body jsonb NOT NULL);
	CREATE TABLE meta_console_sessions (id text PRIMARY KEY, key_id text NOT NULL, body jsonb NOT NULL);
	CREATE INDEX meta_console_sessions_key ON meta_console_sessions (key_id);`,
	// Consumer groups and checkpoints (consumergroup.go), saved searches
	// and dashboards.
	`CREATE TABLE meta_consumer_groups (
		project text NOT NULL, logstore text NOT NULL, name text NOT NULL, body jsonb NOT NULL,
		PRIMARY KEY (project, logstore, name),
		FOREIGN KEY (project, logstore) REFERENCES meta_logstores (project, name) ON DELETE CASCADE);
	CREATE TABLE meta_checkpoints (
		project text NOT NULL, logstore text NOT NULL, grp text NOT NULL, shard integer NOT NULL, body jsonb NOT NULL,
		PRIMARY KEY (project, logstore, grp, shard),
		FOREIGN KEY (project, logstore, grp) REFERENCES meta_consumer_groups (project, logstore, name) ON DELETE CASCADE);
	CREATE TABLE meta_documents (
		project text NOT NULL REFERENCES meta_projects (name) ON DELETE CASCADE,
		kind text NOT NULL, name text NOT NULL, raw bytea NOT NULL,
		create_time timestamptz NOT NULL, last_modify_time timestamptz NOT NULL,
		PRIMARY KEY (project, kind, name));`,
	// Leases: one holder at a time for work every node could do (the
	// alert evaluator, server/alert).
	`CREATE TABLE meta_leases (name text PRIMARY KEY, holder text NOT NULL, expires timestamptz NOT NULL);`,
}

// Store is the PostgreSQL metadata store. It is safe for concurrent use,
// also by several processes.
type Store struct {
	pool   *pgxpool.Pool
	shared bool // the pool belongs to the caller
}

var _ meta.Store = (*Store)(nil)

// Open connects to the database at dsn (a postgres:// URL or key=value
// string, as libpq takes) and migrates its schema.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("--meta: not a PostgreSQL address (want postgres://user:password@host:5432/db): %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("metadata database: %w", err)
	}
	if err := pgschema.Migrate(ctx, pool, "meta", migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("metadata database %s: %w", redact(cfg.ConnConfig), err)
	}
	return &Store{pool: pool}, nil
}

// OpenPool uses an existing pool (shared with the segment catalog), which
// the caller closes; Close leaves it open.
func OpenPool(ctx context.Context, pool *pgxpool.Pool) (*Store, error) {
	if err := pgschema.Migrate(ctx, pool, "meta", migrations); err != nil {
		return nil, fmt.Errorf("metadata database: %w", err)
	}
	return &Store{pool: pool, shared: true}, nil
}

func redact(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Close closes the connections (not a pool given to OpenPool). It is
// idempotent.
func (s *Store) Close() error {
	if !s.shared {
		s.pool.Close()
	}
	return nil
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func notFound(kind meta.Kind, name string) error { return &meta.NotFoundError{Kind: kind, Name: name} }

// q is what both a pool and a transaction offer.
type q interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func exists(ctx context.Context, db q, sql string, args ...any) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, "SELECT EXISTS ("+sql+")", args...).Scan(&ok)
	return ok, err
}

// needProject returns a *NotFoundError when project does not exist.
func needProject(ctx context.Context, db q, project string) error {
	ok, err := exists(ctx, db, "SELECT 1 FROM meta_projects WHERE name = $1", project)
	if err != nil {
		return err
	}
	if !ok {
		return notFound(meta.KindProject, project)
	}
	return nil
}

// missing explains why a row of kind inside project was not found: the
// project is missing, or the object itself.
func missing(ctx context.Context, db q, project string, kind meta.Kind, name string) error {
	if err := needProject(ctx, db, project); err != nil {
		return err
	}
	return notFound(kind, name)
}

func getBody(ctx context.Context, db q, out any, sql string, args ...any) (bool, error) {
	var body []byte
	err := db.QueryRow(ctx, sql, args...).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(body, out)
}

func names(ctx context.Context, db q, sql string, args ...any) ([]string, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if out == nil {
		out = []string{}
	}
	return out, err
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var nf *meta.NotFoundError
	var ee *meta.ExistsError
	if errors.As(err, &nf) || errors.As(err, &ee) {
		return err
	}
	return fmt.Errorf("metadata: %s: %w", op, err)
}

// inTx runs f in a transaction.
func (s *Store) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, f)
}

// --- projects ---

// CreateProject implements meta.Store.
func (s *Store) CreateProject(ctx context.Context, p meta.Project) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO meta_projects (name, body) VALUES ($1, $2)", p.Name, p)
	if pgCode(err) == uniqueViolation {
		return &meta.ExistsError{Kind: meta.KindProject, Name: p.Name}
	}
	return wrap("create project", err)
}

// GetProject implements meta.Store.
func (s *Store) GetProject(ctx context.Context, name string) (meta.Project, error) {
	var p meta.Project
	ok, err := getBody(ctx, s.pool, &p, "SELECT body FROM meta_projects WHERE name = $1", name)
	if err == nil && !ok {
		err = notFound(meta.KindProject, name)
	}
	return p, wrap("get project", err)
}

// UpdateProject implements meta.Store.
func (s *Store) UpdateProject(ctx context.Context, p meta.Project) error {
	tag, err := s.pool.Exec(ctx, "UPDATE meta_projects SET body = $2 WHERE name = $1", p.Name, p)
	if err == nil && tag.RowsAffected() == 0 {
		err = notFound(meta.KindProject, p.Name)
	}
	return wrap("update project", err)
}

// DeleteProject implements meta.Store.
func (s *Store) DeleteProject(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM meta_projects WHERE name = $1", name)
	if err == nil && tag.RowsAffected() == 0 {
		err = notFound(meta.KindProject, name)
	}
	return wrap("delete project", err)
}

// ListProjects implements meta.Store.
func (s *Store) ListProjects(ctx context.Context, page meta.Page) ([]meta.Project, int, error) {
	rows, err := s.pool.Query(ctx, `SELECT body FROM meta_projects ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, 0, wrap("list projects", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (meta.Project, error) {
		var p meta.Project
		var body []byte
		if err := r.Scan(&body); err != nil {
			return p, err
		}
		return p, json.Unmarshal(body, &p)
	})
	if err != nil {
		return nil, 0, wrap("list projects", err)
	}
	return meta.Apply(all, page), len(all), nil
}

// --- logstores ---

// CreateLogstore implements meta.Store.
func (s *Store) CreateLogstore(ctx context.Context, ls meta.Logstore) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO meta_logstores (project, name, body) VALUES ($1, $2, $3)", ls.Project, ls.Name, ls)
	switch pgCode(err) {
	case uniqueViolation:
		return &meta.ExistsError{Kind: meta.KindLogstore, Name: ls.Name}
	case foreignKeyViolation:
		return notFound(meta.KindProject, ls.Project)
	}
	return wrap("create logstore", err)
}

// GetLogstore implements meta.Store.
func (s *Store) GetLogstore(ctx context.Context, project, name string) (meta.Logstore, error) {
	var ls meta.Logstore
	ok, err := getBody(ctx, s.pool, &ls, "SELECT body FROM meta_logstores WHERE project = $1 AND name = $2", project, name)
	if err == nil && !ok {
		err = missing(ctx, s.pool, project, meta.KindLogstore, name)
	}
	return ls, wrap("get logstore", err)
}

// UpdateLogstore implements meta.Store.
func (s *Store) UpdateLogstore(ctx context.Context, ls meta.Logstore) error {
	tag, err := s.pool.Exec(ctx, "UPDATE meta_logstores SET body = $3 WHERE project = $1 AND name = $2", ls.Project, ls.Name, ls)
	if err == nil && tag.RowsAffected() == 0 {
		err = missing(ctx, s.pool, ls.Project, meta.KindLogstore, ls.Name)
	}
	return wrap("update logstore", err)
}

// DeleteLogstore implements meta.Store.
func (s *Store) DeleteLogstore(ctx context.Context, project, name string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM meta_logstores WHERE project = $1 AND name = $2", project, name)
	if err == nil && tag.RowsAffected() == 0 {
		err = missing(ctx, s.pool, project, meta.KindLogstore, name)
	}
	return wrap("delete logstore", err)
}

// listIn lists the names in table of a project (which must exist).
func (s *Store) listIn(ctx context.Context, table, project string, page meta.Page) ([]string, int, error) {
	var all []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := needProject(ctx, tx, project); err != nil {
			return err
		}
		var err error
		all, err = names(ctx, tx, `SELECT name FROM `+table+` WHERE project = $1 ORDER BY name COLLATE "C"`, project)
		return err
	})
	if err != nil {
		return nil, 0, wrap("list "+table, err)
	}
	return meta.Apply(all, page), len(all), nil
}

// ListLogstores implements meta.Store.
func (s *Store) ListLogstores(ctx context.Context, project string, page meta.Page) ([]string, int, error) {
	return s.listIn(ctx, "meta_logstores", project, page)
}

// --- indexes ---

// PutIndex implements meta.Store.
func (s *Store) PutIndex(ctx context.Context, project, logstore string, cfg index.Config) error {
	body, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("metadata: encode index: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO meta_indexes (project, logstore, body) VALUES ($1, $2, $3)
		ON CONFLICT (project, logstore) DO UPDATE SET body = EXCLUDED.body`, project, logstore, body)
	if pgCode(err) == foreignKeyViolation {
		err = missing(ctx, s.pool, project, meta.KindLogstore, logstore)
	}
	return wrap("put index", err)
}

// needLogstore returns a *NotFoundError when the logstore (or its
// project) does not exist.
func needLogstore(ctx context.Context, db q, project, logstore string) error {
	ok, err := exists(ctx, db, "SELECT 1 FROM meta_logstores WHERE project = $1 AND name = $2", project, logstore)
	if err != nil || ok {
		return err
	}
	return missing(ctx, db, project, meta.KindLogstore, logstore)
}

// GetIndex implements meta.Store.
func (s *Store) GetIndex(ctx context.Context, project, logstore string) (index.Config, error) {
	var cfg index.Config
	ok, err := getBody(ctx, s.pool, &cfg, "SELECT body FROM meta_indexes WHERE project = $1 AND logstore = $2", project, logstore)
	if err == nil && !ok {
		if err = needLogstore(ctx, s.pool, project, logstore); err == nil {
			err = notFound(meta.KindIndex, logstore)
		}
	}
	return cfg, wrap("get index", err)
}

// DeleteIndex implements meta.Store.
func (s *Store) DeleteIndex(ctx context.Context, project, logstore string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM meta_indexes WHERE project = $1 AND logstore = $2", project, logstore)
	if err == nil && tag.RowsAffected() == 0 {
		if err = needLogstore(ctx, s.pool, project, logstore); err == nil {
			err = notFound(meta.KindIndex, logstore)
		}
	}
	return wrap("delete index", err)
}

// --- machine groups ---

// CreateMachineGroup implements meta.Store.
func (s *Store) CreateMachineGroup(ctx context.Context, g meta.MachineGroup) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO meta_machine_groups (project, name, body) VALUES ($1, $2, $3)", g.Project, g.Name, g)
	switch pgCode(err) {
	case uniqueViolation:
		return &meta.ExistsError{Kind: meta.KindMachineGroup, Name: g.Name}
	case foreignKeyViolation:
		return notFound(meta.KindProject, g.Project)
	}
	return wrap("create machine group", err)
}

// GetMachineGroup implements meta.Store.
func (s *Store) GetMachineGroup(ctx context.Context, project, name string) (meta.MachineGroup, error) {
	var g meta.MachineGroup
	ok, err := getBody(ctx, s.pool, &g, "SELECT body FROM meta_machine_groups WHERE project = $1 AND name = $2", project, name)
	if err == nil && !ok {
		err = missing(ctx, s.pool, project, meta.KindMachineGroup, name)
	}
	return g, wrap("get machine group", err)
}

// UpdateMachineGroup implements meta.Store.
func (s *Store) UpdateMachineGroup(ctx context.Context, g meta.MachineGroup) error {
	tag, err := s.pool.Exec(ctx, "UPDATE meta_machine_groups SET body = $3 WHERE project = $1 AND name = $2", g.Project, g.Name, g)
	if err == nil && tag.RowsAffected() == 0 {
		err = missing(ctx, s.pool, g.Project, meta.KindMachineGroup, g.Name)
	}
	return wrap("update machine group", err)
}

// DeleteMachineGroup implements meta.Store.
func (s *Store) DeleteMachineGroup(ctx context.Context, project, name string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM meta_machine_groups WHERE project = $1 AND name = $2", project, name)
	if err == nil && tag.RowsAffected() == 0 {
		err = missing(ctx, s.pool, project, meta.KindMachineGroup, name)
	}
	return wrap("delete machine group", err)
}

// ListMachineGroups implements meta.Store.
func (s *Store) ListMachineGroups(ctx context.Context, project string, page meta.Page) ([]string, int, error) {
	return s.listIn(ctx, "meta_machine_groups", project, page)
}

// --- configs ---

// CreateConfig implements meta.Store.
func (s *Store) CreateConfig(ctx context.Context, c meta.Config) error {
	if !json.Valid(c.Raw) {
		return fmt.Errorf("config %q: raw body is not valid JSON", c.Name)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO meta_configs (project, name, raw, create_time, last_modify_time)
		VALUES ($1, $2, $3, $4, $5)`, c.Project, c.Name, []byte(c.Raw), c.CreateTime, c.LastModifyTime)
	switch pgCode(err) {
	case uniqueViolation:
		return &meta.ExistsError{Kind: meta.KindConfig, Name: c.Name}
	case foreignKeyViolation:
		return notFound(meta.KindProject, c.Project)
	}
	return wrap("create config", err)
}

// GetConfig implements meta.Store.
func (s *Store) GetConfig(ctx context.Context, project, name string) (meta.Config, error) {
	c := meta.Config{Project: project, Name: name}
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT raw, create_time, last_modify_time FROM meta_configs
		WHERE project = $1 AND name = $2`, project, name).Scan(&raw, &c.CreateTime, &c.LastModifyTime)
	if errors.Is(err, pgx.ErrNoRows) {
		err = missing(ctx, s.pool, project, meta.KindConfig, name)
	}
	c.Raw = json.RawMessage(bytes.Clone(raw))
	c.CreateTime, c.LastModifyTime = c.CreateTime.UTC(), c.LastModifyTime.UTC()
	return c, wrap("get config", err)
}

// UpdateConfig implements meta.Store.
func (s *Store) UpdateConfig(ctx context.Context, c meta.Config) error {
	if !json.Valid(c.Raw) {
		return fmt.Errorf("config %q: raw body is not valid JSON", c.Name)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE meta_configs SET raw = $3, create_time = $4, last_modify_time = $5
		WHERE project = $1 AND name = $2`, c.Project, c.Name, []byte(c.Raw), c.CreateTime, c.LastModifyTime)
	if err == nil && tag.RowsAffected() == 0 {
		err = missing(ctx, s.pool, c.Project, meta.KindConfig, c.Name)
	}
	return wrap("update config", err)
}

// DeleteConfig implements meta.Store.
func (s *Store) DeleteConfig(ctx context.Context, project, name string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM meta_configs WHERE project = $1 AND name = $2", project, name)
	if err == nil && tag.RowsAffected() == 0 {
		err = missing(ctx, s.pool, project, meta.KindConfig, name)
	}
	return wrap("delete config", err)
}

// ListConfigs implements meta.Store.
func (s *Store) ListConfigs(ctx context.Context, project string, page meta.Page) ([]string, int, error) {
	return s.listIn(ctx, "meta_configs", project, page)
}

// --- applications ---

// needGroupAndConfig checks, in jsonfile's order, that the project, the
// group and the config exist.
func needGroupAndConfig(ctx context.Context, db q, project, group, config string) error {
	var g, c bool
	err := db.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM meta_machine_groups WHERE project = $1 AND name = $2),
		EXISTS (SELECT 1 FROM meta_configs WHERE project = $1 AND name = $3)`, project, group, config).Scan(&g, &c)
	switch {
	case err != nil:
		return err
	case !g:
		return missing(ctx, db, project, meta.KindMachineGroup, group)
	case !c:
		return notFound(meta.KindConfig, config)
	}
	return nil
}

// ApplyConfig implements meta.Store.
func (s *Store) ApplyConfig(ctx context.Context, project, group, config string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO meta_applied (project, grp, config) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, project, group, config)
	if pgCode(err) == foreignKeyViolation {
		err = needGroupAndConfig(ctx, s.pool, project, group, config)
	}
	return wrap("apply config", err)
}

// RemoveConfig implements meta.Store.
func (s *Store) RemoveConfig(ctx context.Context, project, group, config string) error {
	return wrap("remove config", s.inTx(ctx, func(tx pgx.Tx) error {
		if err := needGroupAndConfig(ctx, tx, project, group, config); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM meta_applied WHERE project = $1 AND grp = $2 AND config = $3", project, group, config)
		return err
	}))
}

// AppliedConfigs implements meta.Store.
func (s *Store) AppliedConfigs(ctx context.Context, project, group string) ([]string, error) {
	var out []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ok, err := exists(ctx, tx, "SELECT 1 FROM meta_machine_groups WHERE project = $1 AND name = $2", project, group)
		if err != nil {
			return err
		}
		if !ok {
			return missing(ctx, tx, project, meta.KindMachineGroup, group)
		}
		out, err = names(ctx, tx, `SELECT config FROM meta_applied WHERE project = $1 AND grp = $2 ORDER BY config COLLATE "C"`, project, group)
		return err
	})
	return out, wrap("applied configs", err)
}

// ConfigGroups implements meta.Store.
func (s *Store) ConfigGroups(ctx context.Context, project, config string) ([]string, error) {
	var out []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		ok, err := exists(ctx, tx, "SELECT 1 FROM meta_configs WHERE project = $1 AND name = $2", project, config)
		if err != nil {
			return err
		}
		if !ok {
			return missing(ctx, tx, project, meta.KindConfig, config)
		}
		out, err = names(ctx, tx, `SELECT grp FROM meta_applied WHERE project = $1 AND config = $2 ORDER BY grp COLLATE "C"`, project, config)
		return err
	})
	return out, wrap("config groups", err)
}

// --- access keys ---

// PutAccessKey implements meta.Store.
func (s *Store) PutAccessKey(ctx context.Context, k meta.AccessKey) error {
	if k.ID == "" || k.Secret == "" {
		return errors.New("access key needs an id and a secret")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO meta_access_keys (id, body) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body`, k.ID, k)
	return wrap("put access key", err)
}

// GetAccessKey implements meta.Store.
func (s *Store) GetAccessKey(ctx context.Context, id string) (meta.AccessKey, error) {
	var k meta.AccessKey
	ok, err := getBody(ctx, s.pool, &k, "SELECT body FROM meta_access_keys WHERE id = $1", id)
	if err == nil && !ok {
		err = notFound(meta.KindAccessKey, id)
	}
	return k, wrap("get access key", err)
}

// DeleteAccessKey implements meta.Store.
func (s *Store) DeleteAccessKey(ctx context.Context, id string) error {
	return wrap("delete access key", s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM meta_access_keys WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound(meta.KindAccessKey, id)
		}
		_, err = tx.Exec(ctx, "DELETE FROM meta_console_sessions WHERE key_id = $1", id)
		return err
	}))
}

func listBodies[T any](ctx context.Context, db q, sql string) ([]T, error) {
	rows, err := db.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) {
		var v T
		var body []byte
		if err := r.Scan(&body); err != nil {
			return v, err
		}
		return v, json.Unmarshal(body, &v)
	})
}

// ListAccessKeys implements meta.Store.
func (s *Store) ListAccessKeys(ctx context.Context) ([]meta.AccessKey, error) {
	out, err := listBodies[meta.AccessKey](ctx, s.pool, `SELECT body FROM meta_access_keys ORDER BY id COLLATE "C"`)
	return out, wrap("list access keys", err)
}

// --- console sessions ---

// PutConsoleSession implements meta.Store.
func (s *Store) PutConsoleSession(ctx context.Context, cs meta.ConsoleSession) error {
	if cs.ID == "" || cs.KeyID == "" {
		return errors.New("console session needs an id and an access key id")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO meta_console_sessions (id, key_id, body) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET key_id = EXCLUDED.key_id, body = EXCLUDED.body`, cs.ID, cs.KeyID, cs)
	return wrap("put console session", err)
}

// GetConsoleSession implements meta.Store.
func (s *Store) GetConsoleSession(ctx context.Context, id string) (meta.ConsoleSession, error) {
	var cs meta.ConsoleSession
	ok, err := getBody(ctx, s.pool, &cs, "SELECT body FROM meta_console_sessions WHERE id = $1", id)
	if err == nil && !ok {
		err = notFound(meta.KindConsoleSession, id)
	}
	return cs, wrap("get console session", err)
}

// TouchConsoleSession implements meta.Store.
func (s *Store) TouchConsoleSession(ctx context.Context, id string, lastUsed time.Time) error {
	return wrap("touch console session", s.inTx(ctx, func(tx pgx.Tx) error {
		var cs meta.ConsoleSession
		ok, err := getBody(ctx, tx, &cs, "SELECT body FROM meta_console_sessions WHERE id = $1 FOR UPDATE", id)
		if err != nil {
			return err
		}
		if !ok {
			return notFound(meta.KindConsoleSession, id)
		}
		if !lastUsed.After(cs.LastUsed) {
			return nil
		}
		cs.LastUsed = lastUsed
		_, err = tx.Exec(ctx, "UPDATE meta_console_sessions SET body = $2 WHERE id = $1", id, cs)
		return err
	}))
}

// DeleteConsoleSessions implements meta.Store.
func (s *Store) DeleteConsoleSessions(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, "DELETE FROM meta_console_sessions WHERE id = ANY($1)", ids)
	return wrap("delete console sessions", err)
}

// ListConsoleSessions implements meta.Store.
func (s *Store) ListConsoleSessions(ctx context.Context) ([]meta.ConsoleSession, error) {
	out, err := listBodies[meta.ConsoleSession](ctx, s.pool, `SELECT body FROM meta_console_sessions ORDER BY id COLLATE "C"`)
	return out, wrap("list console sessions", err)
}

// TryLease grants the lease name to holder for ttl when it is free,
// expired or already holder's (renewed); see pglease.
func (s *Store) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	return pglease.TryLease(ctx, s.pool, "meta_leases", name, holder, ttl)
}
