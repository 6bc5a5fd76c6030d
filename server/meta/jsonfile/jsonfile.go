// Package jsonfile is the embedded metadata backend: the whole metadata set
// (a few hundred objects at most — projects, logstores, groups, configs,
// keys) lives in memory and every mutation rewrites one JSON file
// atomically (write to a temporary file, fsync, rename, fsync the
// directory). This is simpler and easier to inspect and back up than a
// second embedded database, and metadata writes are rare (web-console
// sessions, kept here too, add a write per sign-in and sign-out and at most
// about one a minute per session in use). An exclusive
// flock keeps a second process from opening the same file.
package jsonfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/sluicelog/sluice/internal/fsutil"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/meta"
)

// FileName is the metadata file's name inside the data directory.
const FileName = "meta.json"

const formatVersion = 1

type state struct {
	Version    int                       `json:"version"`
	Projects   map[string]*projectState  `json:"projects"`
	AccessKeys map[string]meta.AccessKey `json:"accessKeys"`
	// ConsoleSessions was added without a version bump: an older binary
	// ignores the field (and drops the sessions at its first write).
	ConsoleSessions map[string]meta.ConsoleSession `json:"consoleSessions,omitempty"`
}

func newState() state {
	return state{Version: formatVersion, Projects: map[string]*projectState{}, AccessKeys: map[string]meta.AccessKey{},
		ConsoleSessions: map[string]meta.ConsoleSession{}}
}

type projectState struct {
	Project   meta.Project                 `json:"project"`
	Logstores map[string]meta.Logstore     `json:"logstores"`
	Indexes   map[string]index.Config      `json:"indexes"`
	Groups    map[string]meta.MachineGroup `json:"machineGroups"`
	Configs   map[string]meta.Config       `json:"configs"`
	Applied   map[string][]string          `json:"applied"` // group → sorted config names
	// Added without a version bump (an older binary ignores them, and
	// drops them at its first write).
	ConsumerGroups map[string]map[string]*consumerGroupState `json:"consumerGroups,omitempty"` // logstore → name
	Documents      map[meta.Kind]map[string]meta.Document    `json:"documents,omitempty"`      // kind → name
}

func newProjectState(p meta.Project) *projectState {
	return &projectState{
		Project:   p,
		Logstores: map[string]meta.Logstore{},
		Indexes:   map[string]index.Config{},
		Groups:    map[string]meta.MachineGroup{},
		Configs:   map[string]meta.Config{},
		Applied:   map[string][]string{},

		ConsumerGroups: map[string]map[string]*consumerGroupState{},
		Documents:      map[meta.Kind]map[string]meta.Document{},
	}
}

// Store is the JSON-file metadata store. It is safe for concurrent use.
type Store struct {
	path string
	lock *os.File

	mu        sync.RWMutex
	st        state
	persisted []byte // the file's current content; restored when a write fails
	closed    bool
}

var _ meta.Store = (*Store)(nil)

// Open opens (creating when missing) the metadata file in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create metadata dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open metadata lock %s.lock: %w", path, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock metadata %s: another sluice-server uses this data dir (%w)", path, err)
	}
	s := &Store{path: path, lock: lock}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.st = newState()
	case err != nil:
		s.unlock()
		return nil, fmt.Errorf("read metadata %s: %w", path, err)
	default:
		if err := s.load(data); err != nil {
			s.unlock()
			return nil, fmt.Errorf("metadata file %s is corrupt (restore it from a backup or move it away to start empty): %w", path, err)
		}
	}
	return s, nil
}

func (s *Store) load(data []byte) error {
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return err
	}
	if st.Version != formatVersion {
		return fmt.Errorf("unsupported format version %d (want %d)", st.Version, formatVersion)
	}
	if st.Projects == nil {
		st.Projects = map[string]*projectState{}
	}
	if st.AccessKeys == nil {
		st.AccessKeys = map[string]meta.AccessKey{}
	}
	if st.ConsoleSessions == nil {
		st.ConsoleSessions = map[string]meta.ConsoleSession{}
	}
	for name, p := range st.Projects {
		if p == nil {
			return fmt.Errorf("project %q has no body", name)
		}
		fresh := newProjectState(p.Project)
		if p.Logstores != nil {
			fresh.Logstores = p.Logstores
		}
		if p.Indexes != nil {
			fresh.Indexes = p.Indexes
		}
		if p.Groups != nil {
			fresh.Groups = p.Groups
		}
		if p.Configs != nil {
			fresh.Configs = p.Configs
		}
		if p.Applied != nil {
			fresh.Applied = p.Applied
		}
		if p.ConsumerGroups != nil {
			fresh.ConsumerGroups = p.ConsumerGroups
		}
		if p.Documents != nil {
			fresh.Documents = p.Documents
		}
		st.Projects[name] = fresh
	}
	s.st = st
	s.persisted = data
	return nil
}

func (s *Store) unlock() {
	_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	_ = s.lock.Close()
}

// Close releases the file lock. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.unlock()
	return nil
}

// errUnchanged from a mutate function means it changed nothing: there is
// nothing to write and mutate returns nil.
var errUnchanged = errors.New("unchanged")

// mutate runs f on the state under the write lock and persists the result.
// When f or the write fails the in-memory state is rolled back.
func (s *Store) mutate(ctx context.Context, f func(st *state) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("metadata store is closed")
	}
	if err := f(&s.st); err != nil {
		if errors.Is(err, errUnchanged) {
			return nil
		}
		s.rollback()
		return err
	}
	data, err := json.MarshalIndent(&s.st, "", " ")
	if err != nil {
		s.rollback()
		return fmt.Errorf("encode metadata: %w", err)
	}
	if err := writeAtomic(s.path, data); err != nil {
		s.rollback()
		return err
	}
	s.persisted = data
	return nil
}

func (s *Store) rollback() {
	if s.persisted == nil {
		s.st = newState()
		return
	}
	// The persisted bytes were produced by us; they always decode.
	_ = s.load(s.persisted)
}

// writeAtomic replaces the metadata file (owner-only: it holds access key
// secrets) so that a crash leaves the old content or the new.
func writeAtomic(path string, data []byte) error {
	if err := fsutil.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	return nil
}

func (s *Store) read(ctx context.Context, f func(st *state) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errors.New("metadata store is closed")
	}
	return f(&s.st)
}

func project(st *state, name string) (*projectState, error) {
	p, ok := st.Projects[name]
	if !ok {
		return nil, &meta.NotFoundError{Kind: meta.KindProject, Name: name}
	}
	return p, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	return keys
}

// --- projects ---

// CreateProject implements meta.Store.
func (s *Store) CreateProject(ctx context.Context, p meta.Project) error {
	return s.mutate(ctx, func(st *state) error {
		if _, ok := st.Projects[p.Name]; ok {
			return &meta.ExistsError{Kind: meta.KindProject, Name: p.Name}
		}
		st.Projects[p.Name] = newProjectState(p)
		return nil
	})
}

// GetProject implements meta.Store.
func (s *Store) GetProject(ctx context.Context, name string) (meta.Project, error) {
	var out meta.Project
	err := s.read(ctx, func(st *state) error {
		p, err := project(st, name)
		if err != nil {
			return err
		}
		out = p.Project
		return nil
	})
	return out, err
}

// UpdateProject implements meta.Store.
func (s *Store) UpdateProject(ctx context.Context, p meta.Project) error {
	return s.mutate(ctx, func(st *state) error {
		ps, err := project(st, p.Name)
		if err != nil {
			return err
		}
		ps.Project = p
		return nil
	})
}

// DeleteProject implements meta.Store.
func (s *Store) DeleteProject(ctx context.Context, name string) error {
	return s.mutate(ctx, func(st *state) error {
		if _, err := project(st, name); err != nil {
			return err
		}
		delete(st.Projects, name)
		return nil
	})
}

// ListProjects implements meta.Store.
func (s *Store) ListProjects(ctx context.Context, page meta.Page) ([]meta.Project, int, error) {
	var out []meta.Project
	var total int
	err := s.read(ctx, func(st *state) error {
		names := sortedKeys(st.Projects)
		total = len(names)
		for _, n := range meta.Apply(names, page) {
			out = append(out, st.Projects[n].Project)
		}
		return nil
	})
	return out, total, err
}

// --- logstores ---

// CreateLogstore implements meta.Store.
func (s *Store) CreateLogstore(ctx context.Context, ls meta.Logstore) error {
	return s.mutate(ctx, func(st *state) error {
		p, err := project(st, ls.Project)
		if err != nil {
			return err
		}
		if _, ok := p.Logstores[ls.Name]; ok {
			return &meta.ExistsError{Kind: meta.KindLogstore, Name: ls.Name}
		}
		p.Logstores[ls.Name] = ls
		return nil
	})
}

func logstore(st *state, proj, name string) (*projectState, meta.Logstore, error) {
	p, err := project(st, proj)
	if err != nil {
		return nil, meta.Logstore{}, err
	}
	ls, ok := p.Logstores[name]
	if !ok {
		return nil, meta.Logstore{}, &meta.NotFoundError{Kind: meta.KindLogstore, Name: name}
	}
	return p, ls, nil
}

// GetLogstore implements meta.Store.
func (s *Store) GetLogstore(ctx context.Context, proj, name string) (meta.Logstore, error) {
	var out meta.Logstore
	err := s.read(ctx, func(st *state) error {
		var err error
		_, out, err = logstore(st, proj, name)
		return err
	})
	return out, err
}

// UpdateLogstore implements meta.Store.
func (s *Store) UpdateLogstore(ctx context.Context, ls meta.Logstore) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := logstore(st, ls.Project, ls.Name)
		if err != nil {
			return err
		}
		p.Logstores[ls.Name] = ls
		return nil
	})
}

// DeleteLogstore implements meta.Store.
func (s *Store) DeleteLogstore(ctx context.Context, proj, name string) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := logstore(st, proj, name)
		if err != nil {
			return err
		}
		delete(p.Logstores, name)
		delete(p.Indexes, name)
		delete(p.ConsumerGroups, name)
		return nil
	})
}

// ListLogstores implements meta.Store.
func (s *Store) ListLogstores(ctx context.Context, proj string, page meta.Page) ([]string, int, error) {
	var out []string
	var total int
	err := s.read(ctx, func(st *state) error {
		p, err := project(st, proj)
		if err != nil {
			return err
		}
		names := sortedKeys(p.Logstores)
		total = len(names)
		out = meta.Apply(names, page)
		return nil
	})
	return out, total, err
}

// --- indexes ---

// cloneIndex deep-copies cfg so callers cannot alias the stored value.
func cloneIndex(cfg index.Config) (index.Config, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return index.Config{}, err
	}
	var out index.Config
	err = json.Unmarshal(b, &out)
	return out, err
}

// PutIndex implements meta.Store.
func (s *Store) PutIndex(ctx context.Context, proj, ls string, cfg index.Config) error {
	cfg, err := cloneIndex(cfg)
	if err != nil {
		return fmt.Errorf("encode index: %w", err)
	}
	return s.mutate(ctx, func(st *state) error {
		p, _, err := logstore(st, proj, ls)
		if err != nil {
			return err
		}
		p.Indexes[ls] = cfg
		return nil
	})
}

// GetIndex implements meta.Store.
func (s *Store) GetIndex(ctx context.Context, proj, ls string) (index.Config, error) {
	var out index.Config
	err := s.read(ctx, func(st *state) error {
		p, _, err := logstore(st, proj, ls)
		if err != nil {
			return err
		}
		cfg, ok := p.Indexes[ls]
		if !ok {
			return &meta.NotFoundError{Kind: meta.KindIndex, Name: ls}
		}
		out, err = cloneIndex(cfg)
		return err
	})
	return out, err
}

// DeleteIndex implements meta.Store.
func (s *Store) DeleteIndex(ctx context.Context, proj, ls string) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := logstore(st, proj, ls)
		if err != nil {
			return err
		}
		if _, ok := p.Indexes[ls]; !ok {
			return &meta.NotFoundError{Kind: meta.KindIndex, Name: ls}
		}
		delete(p.Indexes, ls)
		return nil
	})
}

// --- machine groups ---

func cloneGroup(g meta.MachineGroup) meta.MachineGroup {
	g.MachineList = slices.Clone(g.MachineList)
	return g
}

// CreateMachineGroup implements meta.Store.
func (s *Store) CreateMachineGroup(ctx context.Context, g meta.MachineGroup) error {
	g = cloneGroup(g)
	return s.mutate(ctx, func(st *state) error {
		p, err := project(st, g.Project)
		if err != nil {
			return err
		}
		if _, ok := p.Groups[g.Name]; ok {
			return &meta.ExistsError{Kind: meta.KindMachineGroup, Name: g.Name}
		}
		p.Groups[g.Name] = g
		return nil
	})
}

func group(st *state, proj, name string) (*projectState, meta.MachineGroup, error) {
	p, err := project(st, proj)
	if err != nil {
		return nil, meta.MachineGroup{}, err
	}
	g, ok := p.Groups[name]
	if !ok {
		return nil, meta.MachineGroup{}, &meta.NotFoundError{Kind: meta.KindMachineGroup, Name: name}
	}
	return p, g, nil
}

// GetMachineGroup implements meta.Store.
func (s *Store) GetMachineGroup(ctx context.Context, proj, name string) (meta.MachineGroup, error) {
	var out meta.MachineGroup
	err := s.read(ctx, func(st *state) error {
		_, g, err := group(st, proj, name)
		out = cloneGroup(g)
		return err
	})
	return out, err
}

// UpdateMachineGroup implements meta.Store.
func (s *Store) UpdateMachineGroup(ctx context.Context, g meta.MachineGroup) error {
	g = cloneGroup(g)
	return s.mutate(ctx, func(st *state) error {
		p, _, err := group(st, g.Project, g.Name)
		if err != nil {
			return err
		}
		p.Groups[g.Name] = g
		return nil
	})
}

// DeleteMachineGroup implements meta.Store.
func (s *Store) DeleteMachineGroup(ctx context.Context, proj, name string) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := group(st, proj, name)
		if err != nil {
			return err
		}
		delete(p.Groups, name)
		delete(p.Applied, name)
		return nil
	})
}

// ListMachineGroups implements meta.Store.
func (s *Store) ListMachineGroups(ctx context.Context, proj string, page meta.Page) ([]string, int, error) {
	var out []string
	var total int
	err := s.read(ctx, func(st *state) error {
		p, err := project(st, proj)
		if err != nil {
			return err
		}
		names := sortedKeys(p.Groups)
		total = len(names)
		out = meta.Apply(names, page)
		return nil
	})
	return out, total, err
}

// --- configs ---

func cloneConfig(c meta.Config) meta.Config {
	c.Raw = bytes.Clone(c.Raw)
	return c
}

// CreateConfig implements meta.Store.
func (s *Store) CreateConfig(ctx context.Context, c meta.Config) error {
	if !json.Valid(c.Raw) {
		return fmt.Errorf("config %q: raw body is not valid JSON", c.Name)
	}
	c = cloneConfig(c)
	return s.mutate(ctx, func(st *state) error {
		p, err := project(st, c.Project)
		if err != nil {
			return err
		}
		if _, ok := p.Configs[c.Name]; ok {
			return &meta.ExistsError{Kind: meta.KindConfig, Name: c.Name}
		}
		p.Configs[c.Name] = c
		return nil
	})
}

func config(st *state, proj, name string) (*projectState, meta.Config, error) {
	p, err := project(st, proj)
	if err != nil {
		return nil, meta.Config{}, err
	}
	c, ok := p.Configs[name]
	if !ok {
		return nil, meta.Config{}, &meta.NotFoundError{Kind: meta.KindConfig, Name: name}
	}
	return p, c, nil
}

// GetConfig implements meta.Store.
func (s *Store) GetConfig(ctx context.Context, proj, name string) (meta.Config, error) {
	var out meta.Config
	err := s.read(ctx, func(st *state) error {
		_, c, err := config(st, proj, name)
		out = cloneConfig(c)
		return err
	})
	return out, err
}

// UpdateConfig implements meta.Store.
func (s *Store) UpdateConfig(ctx context.Context, c meta.Config) error {
	if !json.Valid(c.Raw) {
		return fmt.Errorf("config %q: raw body is not valid JSON", c.Name)
	}
	c = cloneConfig(c)
	return s.mutate(ctx, func(st *state) error {
		p, _, err := config(st, c.Project, c.Name)
		if err != nil {
			return err
		}
		p.Configs[c.Name] = c
		return nil
	})
}

// DeleteConfig implements meta.Store.
func (s *Store) DeleteConfig(ctx context.Context, proj, name string) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := config(st, proj, name)
		if err != nil {
			return err
		}
		delete(p.Configs, name)
		for g, cs := range p.Applied {
			p.Applied[g] = slices.DeleteFunc(cs, func(c string) bool { return c == name })
		}
		return nil
	})
}

// ListConfigs implements meta.Store.
func (s *Store) ListConfigs(ctx context.Context, proj string, page meta.Page) ([]string, int, error) {
	var out []string
	var total int
	err := s.read(ctx, func(st *state) error {
		p, err := project(st, proj)
		if err != nil {
			return err
		}
		names := sortedKeys(p.Configs)
		total = len(names)
		out = meta.Apply(names, page)
		return nil
	})
	return out, total, err
}

// --- applications ---

// ApplyConfig implements meta.Store.
func (s *Store) ApplyConfig(ctx context.Context, proj, grp, cfg string) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := group(st, proj, grp)
		if err != nil {
			return err
		}
		if _, _, err := config(st, proj, cfg); err != nil {
			return err
		}
		cs := p.Applied[grp]
		if i, found := slices.BinarySearch(cs, cfg); !found {
			p.Applied[grp] = slices.Insert(cs, i, cfg)
		}
		return nil
	})
}

// RemoveConfig implements meta.Store.
func (s *Store) RemoveConfig(ctx context.Context, proj, grp, cfg string) error {
	return s.mutate(ctx, func(st *state) error {
		p, _, err := group(st, proj, grp)
		if err != nil {
			return err
		}
		if _, _, err := config(st, proj, cfg); err != nil {
			return err
		}
		cs := p.Applied[grp]
		if i, found := slices.BinarySearch(cs, cfg); found {
			p.Applied[grp] = slices.Delete(cs, i, i+1)
		}
		return nil
	})
}

// AppliedConfigs implements meta.Store.
func (s *Store) AppliedConfigs(ctx context.Context, proj, grp string) ([]string, error) {
	var out []string
	err := s.read(ctx, func(st *state) error {
		p, _, err := group(st, proj, grp)
		if err != nil {
			return err
		}
		out = slices.Clone(p.Applied[grp])
		return nil
	})
	return out, err
}

// ConfigGroups implements meta.Store.
func (s *Store) ConfigGroups(ctx context.Context, proj, cfg string) ([]string, error) {
	var out []string
	err := s.read(ctx, func(st *state) error {
		p, _, err := config(st, proj, cfg)
		if err != nil {
			return err
		}
		for _, g := range sortedKeys(p.Applied) {
			if _, found := slices.BinarySearch(p.Applied[g], cfg); found {
				out = append(out, g)
			}
		}
		return nil
	})
	return out, err
}

// --- access keys ---

func cloneKey(k meta.AccessKey) meta.AccessKey {
	k.Projects = maps.Clone(k.Projects)
	return k
}

// PutAccessKey implements meta.Store.
func (s *Store) PutAccessKey(ctx context.Context, k meta.AccessKey) error {
	if k.ID == "" || k.Secret == "" {
		return errors.New("access key needs an id and a secret")
	}
	k = cloneKey(k)
	return s.mutate(ctx, func(st *state) error {
		st.AccessKeys[k.ID] = k
		return nil
	})
}

// GetAccessKey implements meta.Store.
func (s *Store) GetAccessKey(ctx context.Context, id string) (meta.AccessKey, error) {
	var out meta.AccessKey
	err := s.read(ctx, func(st *state) error {
		k, ok := st.AccessKeys[id]
		if !ok {
			return &meta.NotFoundError{Kind: meta.KindAccessKey, Name: id}
		}
		out = cloneKey(k)
		return nil
	})
	return out, err
}

// DeleteAccessKey implements meta.Store.
func (s *Store) DeleteAccessKey(ctx context.Context, id string) error {
	return s.mutate(ctx, func(st *state) error {
		if _, ok := st.AccessKeys[id]; !ok {
			return &meta.NotFoundError{Kind: meta.KindAccessKey, Name: id}
		}
		delete(st.AccessKeys, id)
		maps.DeleteFunc(st.ConsoleSessions, func(_ string, cs meta.ConsoleSession) bool { return cs.KeyID == id })
		return nil
	})
}

// ListAccessKeys implements meta.Store.
func (s *Store) ListAccessKeys(ctx context.Context) ([]meta.AccessKey, error) {
	var out []meta.AccessKey
	err := s.read(ctx, func(st *state) error {
		for _, id := range sortedKeys(st.AccessKeys) {
			out = append(out, cloneKey(st.AccessKeys[id]))
		}
		return nil
	})
	return out, err
}

// --- console sessions ---

// PutConsoleSession implements meta.Store.
func (s *Store) PutConsoleSession(ctx context.Context, cs meta.ConsoleSession) error {
	if cs.ID == "" || cs.KeyID == "" {
		return errors.New("console session needs an id and an access key id")
	}
	return s.mutate(ctx, func(st *state) error {
		st.ConsoleSessions[cs.ID] = cs
		return nil
	})
}

// GetConsoleSession implements meta.Store.
func (s *Store) GetConsoleSession(ctx context.Context, id string) (meta.ConsoleSession, error) {
	var out meta.ConsoleSession
	err := s.read(ctx, func(st *state) error {
		cs, ok := st.ConsoleSessions[id]
		if !ok {
			return &meta.NotFoundError{Kind: meta.KindConsoleSession, Name: id}
		}
		out = cs
		return nil
	})
	return out, err
}

// TouchConsoleSession implements meta.Store.
func (s *Store) TouchConsoleSession(ctx context.Context, id string, lastUsed time.Time) error {
	return s.mutate(ctx, func(st *state) error {
		cs, ok := st.ConsoleSessions[id]
		if !ok {
			return &meta.NotFoundError{Kind: meta.KindConsoleSession, Name: id}
		}
		if !lastUsed.After(cs.LastUsed) {
			return errUnchanged
		}
		cs.LastUsed = lastUsed
		st.ConsoleSessions[id] = cs
		return nil
	})
}

// DeleteConsoleSessions implements meta.Store.
func (s *Store) DeleteConsoleSessions(ctx context.Context, ids ...string) error {
	return s.mutate(ctx, func(st *state) error {
		n := len(st.ConsoleSessions)
		for _, id := range ids {
			delete(st.ConsoleSessions, id)
		}
		if len(st.ConsoleSessions) == n {
			return errUnchanged
		}
		return nil
	})
}

// ListConsoleSessions implements meta.Store.
func (s *Store) ListConsoleSessions(ctx context.Context) ([]meta.ConsoleSession, error) {
	var out []meta.ConsoleSession
	err := s.read(ctx, func(st *state) error {
		for _, id := range sortedKeys(st.ConsoleSessions) {
			out = append(out, st.ConsoleSessions[id])
		}
		return nil
	})
	return out, err
}
