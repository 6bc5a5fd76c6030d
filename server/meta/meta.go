// Package meta is the contract between the Log Service API and the metadata
// backends: projects, logstores, index configurations, machine groups,
// Logtail configs, config↔group applications, access keys, consumer
// groups with their checkpoints, saved searches and dashboards. The embedded
// backend is server/meta/jsonfile; a PostgreSQL backend can implement the
// same Store interface without changes to the API layer. metatest holds the
// conformance suite every backend must pass.
package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluicelog/sluice/server/index"
)

// Kind names the kind of object an error is about; the API maps it to the
// Log Service error code (ProjectNotExist, LogStoreNotExist, ...).
type Kind string

// Object kinds.
const (
	KindProject      Kind = "project"
	KindLogstore     Kind = "logstore"
	KindIndex        Kind = "index"
	KindMachineGroup Kind = "machine group"
	KindConfig       Kind = "config"
	KindAccessKey    Kind = "access key"
	// KindConsoleSession is a web-console sign-in (ConsoleSession).
	KindConsoleSession Kind = "console session"
)

// Sentinel errors; check with errors.Is, and errors.As(*NotFoundError) /
// (*ExistsError) for the kind and name.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// NotFoundError says which object does not exist. It matches ErrNotFound.
type NotFoundError struct {
	Kind Kind
	Name string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q does not exist", e.Kind, e.Name) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ExistsError says which object already exists. It matches ErrExists.
type ExistsError struct {
	Kind Kind
	Name string
}

func (e *ExistsError) Error() string { return fmt.Sprintf("%s %q already exists", e.Kind, e.Name) }

// Is makes errors.Is(err, ErrExists) true.
func (e *ExistsError) Is(target error) bool { return target == ErrExists }

// Project is a Log Service project (tenant).
type Project struct {
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	CreateTime     time.Time `json:"createTime"`
	LastModifyTime time.Time `json:"lastModifyTime"`
}

// Logstore is a log store of a project. Fields mirror the logstore API body.
type Logstore struct {
	Project        string    `json:"project"`
	Name           string    `json:"name"`
	TTL            int       `json:"ttl"` // days
	ShardCount     int       `json:"shardCount"`
	EnableTracking bool      `json:"enableTracking"`
	AutoSplit      bool      `json:"autoSplit"`
	MaxSplitShard  int       `json:"maxSplitShard"`
	AppendMeta     bool      `json:"appendMeta"`
	TelemetryType  string    `json:"telemetryType"`
	Mode           string    `json:"mode"`
	HotTTL         int       `json:"hotTTL"`
	CreateTime     time.Time `json:"createTime"`
	LastModifyTime time.Time `json:"lastModifyTime"`
}

// GroupAttribute is a machine group's groupAttribute.
type GroupAttribute struct {
	ExternalName string `json:"externalName"`
	GroupTopic   string `json:"groupTopic"`
}

// MachineGroup is a set of agents, by IP or user-defined identity.
type MachineGroup struct {
	Project             string         `json:"project"`
	Name                string         `json:"name"`
	GroupType           string         `json:"groupType"`
	MachineIdentifyType string         `json:"machineIdentifyType"` // "ip" | "userdefined"
	MachineList         []string       `json:"machineList"`
	Attribute           GroupAttribute `json:"groupAttribute"`
	CreateTime          time.Time      `json:"createTime"`
	LastModifyTime      time.Time      `json:"lastModifyTime"`
}

// Config is a Logtail collection config, kept as the raw JSON the client
// sent (validated by logconfig before it is stored) so that fields Sluice
// does not interpret survive a round trip.
type Config struct {
	Project        string          `json:"project"`
	Name           string          `json:"name"`
	Raw            json.RawMessage `json:"raw"`
	CreateTime     time.Time       `json:"createTime"`
	LastModifyTime time.Time       `json:"lastModifyTime"`
}

// Permission is what an access key may do in a project.
type Permission string

// Permissions, weakest first.
const (
	PermRead  Permission = "read"  // GetLogs, histograms, get/list metadata
	PermWrite Permission = "write" // read + PutLogs + create/update/delete in the project
)

// Allows reports whether p includes need.
func (p Permission) Allows(need Permission) bool {
	switch p {
	case PermWrite:
		return need == PermWrite || need == PermRead
	case PermRead:
		return need == PermRead
	}
	return false
}

// AccessKey is an API credential. An admin key may do everything, including
// creating projects and managing keys; any other key may only touch the
// projects listed in Projects, with the given permission.
type AccessKey struct {
	ID          string                `json:"id"`
	Secret      string                `json:"secret"`
	Admin       bool                  `json:"admin,omitempty"`
	Projects    map[string]Permission `json:"projects,omitempty"`
	Description string                `json:"description,omitempty"`
	CreateTime  time.Time             `json:"createTime"`
}

// Allows reports whether k may perform an action needing perm in project.
func (k *AccessKey) Allows(project string, perm Permission) bool {
	if k.Admin {
		return true
	}
	p, ok := k.Projects[project]
	return ok && p.Allows(perm)
}

// ConsoleSession is a web-console sign-in (server/console). It holds
// nothing that signs a request on its own: not the cookie value, only its
// SHA-256, and not the key's secret, which is read from the access key by
// KeyID at each use.
type ConsoleSession struct {
	// ID is the hex SHA-256 of the session cookie's value.
	ID    string `json:"id"`
	KeyID string `json:"keyId"`
	// SecretMAC is the hex HMAC-SHA256 of the key's secret at sign-in,
	// keyed by the cookie value: a new secret no longer matches it, so
	// rotating a key ends its sessions (across restarts too), and without
	// the cookie it says nothing about the secret.
	SecretMAC string `json:"secretMac"`
	// CSRFToken must come with every mutating request of the session.
	CSRFToken string    `json:"csrfToken"`
	Created   time.Time `json:"created"`
	// LastUsed is coarse: the console moves it at most about once a
	// minute per session, so a busy console does not write per click.
	LastUsed time.Time `json:"lastUsed"`
}

// Page selects part of a list: Offset items skipped, at most Size returned
// (Size <= 0 = all).
type Page struct {
	Offset, Size int
}

// Apply returns the page p of items.
func Apply[T any](items []T, p Page) []T {
	if p.Offset < 0 {
		p.Offset = 0
	}
	if p.Offset >= len(items) {
		return nil
	}
	items = items[p.Offset:]
	if p.Size > 0 && p.Size < len(items) {
		items = items[:p.Size]
	}
	return items
}

// Store is the metadata backend. Lists are sorted by name. Every mutation is
// durable when it returns. Get/Update/Delete of a missing object return a
// *NotFoundError; Create of an existing one an *ExistsError. Objects inside a
// project require the project to exist (*NotFoundError{KindProject}).
type Store interface {
	CreateProject(ctx context.Context, p Project) error
	GetProject(ctx context.Context, name string) (Project, error)
	UpdateProject(ctx context.Context, p Project) error
	// DeleteProject deletes the project and everything in it.
	DeleteProject(ctx context.Context, name string) error
	ListProjects(ctx context.Context, page Page) (projects []Project, total int, err error)

	CreateLogstore(ctx context.Context, ls Logstore) error
	GetLogstore(ctx context.Context, project, name string) (Logstore, error)
	UpdateLogstore(ctx context.Context, ls Logstore) error
	// DeleteLogstore deletes the logstore and its index configuration.
	DeleteLogstore(ctx context.Context, project, name string) error
	ListLogstores(ctx context.Context, project string, page Page) (names []string, total int, err error)

	// PutIndex creates or replaces the logstore's index configuration.
	PutIndex(ctx context.Context, project, logstore string, cfg index.Config) error
	GetIndex(ctx context.Context, project, logstore string) (index.Config, error)
	DeleteIndex(ctx context.Context, project, logstore string) error

	CreateMachineGroup(ctx context.Context, g MachineGroup) error
	GetMachineGroup(ctx context.Context, project, name string) (MachineGroup, error)
	UpdateMachineGroup(ctx context.Context, g MachineGroup) error
	// DeleteMachineGroup also removes the group's config applications.
	DeleteMachineGroup(ctx context.Context, project, name string) error
	ListMachineGroups(ctx context.Context, project string, page Page) (names []string, total int, err error)

	CreateConfig(ctx context.Context, c Config) error
	GetConfig(ctx context.Context, project, name string) (Config, error)
	UpdateConfig(ctx context.Context, c Config) error
	// DeleteConfig also removes the config's applications.
	DeleteConfig(ctx context.Context, project, name string) error
	ListConfigs(ctx context.Context, project string, page Page) (names []string, total int, err error)

	// ApplyConfig applies config to group (idempotent); both must exist.
	ApplyConfig(ctx context.Context, project, group, config string) error
	// RemoveConfig removes the application (idempotent); both must exist.
	RemoveConfig(ctx context.Context, project, group, config string) error
	// AppliedConfigs lists the configs applied to group.
	AppliedConfigs(ctx context.Context, project, group string) ([]string, error)
	// ConfigGroups lists the groups config is applied to.
	ConfigGroups(ctx context.Context, project, config string) ([]string, error)

	// PutAccessKey creates or replaces a key.
	PutAccessKey(ctx context.Context, k AccessKey) error
	GetAccessKey(ctx context.Context, id string) (AccessKey, error)
	// DeleteAccessKey also deletes the key's console sessions.
	DeleteAccessKey(ctx context.Context, id string) error
	ListAccessKeys(ctx context.Context) ([]AccessKey, error)

	// Console sessions are kept here, beside the keys they depend on, so
	// that they survive a restart and a shared backend shares them between
	// replicas. Sessions of a missing key may be stored (the console
	// checks the key at each use).
	//
	// PutConsoleSession creates or replaces a session.
	PutConsoleSession(ctx context.Context, s ConsoleSession) error
	GetConsoleSession(ctx context.Context, id string) (ConsoleSession, error)
	// TouchConsoleSession moves a session's LastUsed forward to lastUsed
	// (never back). It never recreates a deleted session: a missing one is
	// a *NotFoundError.
	TouchConsoleSession(ctx context.Context, id string, lastUsed time.Time) error
	// DeleteConsoleSessions deletes the sessions with these ids; unknown
	// ids are ignored (signing out twice is no error).
	DeleteConsoleSessions(ctx context.Context, ids ...string) error
	// ListConsoleSessions lists every session, sorted by ID.
	ListConsoleSessions(ctx context.Context) ([]ConsoleSession, error)

	// Consumer groups live in a logstore (which must exist) and go with
	// it; a group's checkpoints go with the group.
	CreateConsumerGroup(ctx context.Context, g ConsumerGroup) error
	GetConsumerGroup(ctx context.Context, project, logstore, name string) (ConsumerGroup, error)
	UpdateConsumerGroup(ctx context.Context, g ConsumerGroup) error
	DeleteConsumerGroup(ctx context.Context, project, logstore, name string) error
	ListConsumerGroups(ctx context.Context, project, logstore string) ([]ConsumerGroup, error)
	// PutCheckpoint creates or replaces the group's checkpoint of cp.Shard.
	PutCheckpoint(ctx context.Context, project, logstore, group string, cp Checkpoint) error
	// Checkpoints lists the group's checkpoints by shard.
	Checkpoints(ctx context.Context, project, logstore, group string) ([]Checkpoint, error)

	// Documents (saved searches, dashboards) live in a project; d.Kind
	// and the kind arguments are KindSavedSearch or KindDashboard, and
	// errors name that kind.
	CreateDocument(ctx context.Context, d Document) error
	GetDocument(ctx context.Context, project string, kind Kind, name string) (Document, error)
	UpdateDocument(ctx context.Context, d Document) error
	DeleteDocument(ctx context.Context, project string, kind Kind, name string) error
	ListDocuments(ctx context.Context, project string, kind Kind, page Page) (docs []Document, total int, err error)

	Close() error
}
