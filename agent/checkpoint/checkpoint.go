// Package checkpoint remembers where each file input stopped: per file its
// identity (device, inode and a signature of its first bytes), the offset up
// to which every batch has been acknowledged, its path, the config that reads
// it and when the entry last changed.
//
// One Store is shared by all inputs of an agent and keyed by config name and
// file identity, so an input that the runtime replaces for a changed config
// resumes exactly where its predecessor stopped. The store lives in memory;
// Flush writes it atomically (temporary file, fsync, rename, directory fsync).
// After Start, every change is written within Config.Delay (200 ms), batched
// with the changes that follow it — as Filebeat's registry.flush does — so a
// crash repeats at most what was acknowledged in that window; a write that
// takes long stretches the delay (at most to Config.Interval) so that writing
// never takes more than a small share of the time. A file that cannot be
// decoded is reported (error log and metric), renamed aside to
// <path>.corrupt-<unix seconds> and replaced by an empty store: losing
// positions duplicates data, refusing to start would lose all of it.
//
// Besides positions the store keeps, per config, when it first ran
// (ConfigState): a file input applies its "existing files" rules
// (tail_size_kb, tailExisted) only at a config's very first start, and reads
// every file found later from its start. Entries of files read to their end
// after they left their path stay as Done tombstones while the file exists,
// so that after a restart neither the file nor a compressed copy of it is
// mistaken for one that was never read.
//
// The file is versioned JSON: small (a few hundred bytes per file), readable
// by an operator with jq when positions look wrong, and written a few times a
// second at most, so a binary codec would buy nothing worth the opacity.
package checkpoint

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/internal/fsutil"
)

// SignatureMax is how many leading bytes of a file its signature covers.
const SignatureMax = 1024

// FileID names a file on this machine while it exists: device and inode.
type FileID struct {
	Dev, Inode uint64
}

// Signature is a hash of a file's first Size bytes (Size ≤ SignatureMax). It
// tells the file a position was saved for from a reused inode or a file that
// was truncated and rewritten, which share the FileID.
type Signature struct {
	Hash uint64
	Size uint32
}

// Sign returns the signature of a file that starts with prefix; only the first
// SignatureMax bytes count.
func Sign(prefix []byte) Signature {
	if len(prefix) > SignatureMax {
		prefix = prefix[:SignatureMax]
	}
	return Signature{Hash: xxhash.Sum64(prefix), Size: uint32(len(prefix))}
}

// Matches reports whether a file starting with prefix is the file s was made
// from: its first s.Size bytes hash to s.Hash. A file shorter than s.Size does
// not match (it was truncated).
func (s Signature) Matches(prefix []byte) bool {
	if len(prefix) < int(s.Size) {
		return false
	}
	return xxhash.Sum64(prefix[:s.Size]) == s.Hash
}

// Entry is the saved position of one file for one config.
type Entry struct {
	Config string
	// Path is where the file was last seen. After a restart the file is looked
	// up by identity, first at Path, then among its neighbours (rotated names).
	Path string
	File FileID
	Sig  Signature
	// Offset is the end of the longest prefix of the file whose batches were
	// all acknowledged as delivered.
	Offset int64
	// Size is the file size when last seen; Size−Offset is what would be lost
	// if the file disappeared before it was read.
	Size int64
	// Done marks a file that left its path (rotated, deleted) and was read to
	// its end: kept while the file may still exist, so that it and copies of
	// it (a compressed rotation) are known as read after a restart.
	Done    bool
	Updated time.Time
}

// ConfigState is what the store remembers about a config beyond its files.
type ConfigState struct {
	// Started is when the config first ran with this agent's checkpoint
	// (zero for configs that ran before the agent recorded it).
	Started time.Time
	// Match identifies what the config matches (a hash of its path, pattern,
	// depth and blacklists, as the input computes it): a config that matches
	// other files than before treats the newly matched files as existing.
	Match string
}

// Config is the store's configuration.
type Config struct {
	// Path of the checkpoint file; empty keeps checkpoints in memory only.
	Path string
	// Interval is the longest a change waits before it is written
	// (check_point_dump_interval): the write delay grows towards it when
	// writes are slow, and failed writes are retried at this interval.
	Interval time.Duration
	// Delay is how long after a change the store is written, gathering the
	// changes made meanwhile into the same write; DefaultDelay when zero.
	Delay time.Duration
}

// DefaultDelay batches checkpoint writes: a crash repeats at most about
// this much acknowledged data, and the store is written at most about five
// times a second.
const DefaultDelay = 200 * time.Millisecond

// writeShare bounds the time spent writing: the delay before a write is at
// least writeShare times the duration of the previous write.
const writeShare = 20

// Validate checks c.
func (c Config) Validate() error {
	if c.Path != "" && c.Interval <= 0 {
		return fmt.Errorf("checkpoint interval must be positive, got %s: set check_point_dump_interval to a few seconds", c.Interval)
	}
	if c.Delay < 0 {
		return fmt.Errorf("checkpoint write delay must not be negative, got %s", c.Delay)
	}
	return nil
}

// Settings carry what the store needs from the agent.
type Settings struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nothing
	Now        func() time.Time      // nil = time.Now; tests pin the clock
}

type key struct {
	config string
	file   FileID
}

// Store is the agent's checkpoint store. It is safe for concurrent use.
type Store struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	entries   map[key]Entry
	byInode   map[string]map[uint64][]FileID // config → inode → ids, for IgnoreDevice lookups
	configs   map[string]ConfigState
	gen       uint64    // bumped on every change
	written   uint64    // gen of the last successful write
	lastOK    time.Time // last successful write, or when the store opened
	loadedAt  time.Time // when the loaded file was written; zero without one
	changed   chan struct{}
	writeTook time.Duration // duration of the last write

	flushMu sync.Mutex // one writer at a time

	lifeMu  sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool

	mWriteErrors prometheus.Counter
	mLoadErrors  *prometheus.CounterVec
	mWrites      prometheus.Counter
}

// New returns a store loaded from cfg.Path. A missing file gives an empty
// store; an undecodable one is reported, renamed aside and replaced by an
// empty store. Only a file that exists but cannot be read (permissions, I/O)
// is an error: starting empty then would silently re-read everything.
func New(cfg Config, set Settings) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:     cfg,
		log:     set.Logger,
		now:     set.Now,
		entries: make(map[key]Entry),
		byInode: make(map[string]map[uint64][]FileID),
		configs: make(map[string]ConfigState),
		changed: make(chan struct{}, 1),
	}
	if s.cfg.Delay == 0 {
		s.cfg.Delay = DefaultDelay
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.lastOK = s.now()
	if err := s.registerMetrics(set.Registerer); err != nil {
		return nil, err
	}
	if cfg.Path != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) registerMetrics(reg prometheus.Registerer) error {
	s.mWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_checkpoint_write_errors_total",
		Help: "Checkpoint file writes that failed; positions are kept in memory and retried.",
	})
	s.mWrites = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_checkpoint_writes_total",
		Help: "Checkpoint file writes that succeeded.",
	})
	s.mLoadErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_checkpoint_load_errors_total",
		Help: "Checkpoint files that could not be decoded at start and were renamed aside (reason: corrupt, version).",
	}, []string{"reason"})
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_checkpoint_age_seconds",
		Help: "Seconds since the checkpoint file last matched memory (0 when nothing changed since the last write).",
	}, s.ageSeconds)
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_checkpoint_entries",
		Help: "Files with a saved position.",
	}, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(len(s.entries))
	})
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{s.mWriteErrors, s.mWrites, s.mLoadErrors, age, entries} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register checkpoint metrics (one store per agent): %w", err)
		}
	}
	return nil
}

func (s *Store) ageSeconds() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == s.written {
		return 0
	}
	return s.now().Sub(s.lastOK).Seconds()
}

// Find returns config's entry for file id — same device and inode; or the
// same inode on another device, either at the same path (a volume mounted
// again: a PVC or NAS volume gets a new device id when its pod moves to
// another node, with the guides' manifests as printed) or, with
// ignoreDevice, at any path — for which sigOK accepts the saved signature.
// The caller checks the signature against the file's first bytes. path ""
// skips the same-path lookup.
func (s *Store) Find(config string, id FileID, path string, ignoreDevice bool, sigOK func(Signature) bool) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key{config, id}]; ok && sigOK(e.Sig) {
		return e, true
	}
	if !ignoreDevice && path == "" {
		return Entry{}, false
	}
	var best Entry
	found := false
	for _, other := range s.byInode[config][id.Inode] {
		e := s.entries[key{config, other}]
		if other == id || (!ignoreDevice && e.Path != path) {
			continue
		}
		if sigOK(e.Sig) && (!found || e.Updated.After(best.Updated)) {
			best, found = e, true
		}
	}
	return best, found
}

// Entries returns a copy of config's entries, oldest path first.
func (s *Store) Entries(config string) []Entry {
	s.mu.Lock()
	var out []Entry
	for k, e := range s.entries {
		if k.config == config {
			out = append(out, e)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Path, b.Path) })
	return out
}

// Put saves e, replacing the entry for the same config and file. A zero
// Updated is set to now.
func (s *Store) Put(e Entry) {
	if e.Updated.IsZero() {
		e.Updated = s.now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{e.Config, e.File}
	if old, ok := s.entries[k]; ok && old == e {
		return
	}
	if _, ok := s.entries[k]; !ok {
		byIno := s.byInode[e.Config]
		if byIno == nil {
			byIno = make(map[uint64][]FileID)
			s.byInode[e.Config] = byIno
		}
		byIno[e.File.Inode] = append(byIno[e.File.Inode], e.File)
	}
	s.entries[k] = e
	s.changedLocked()
}

// changedLocked records a change and wakes the background writer; s.mu is
// held.
func (s *Store) changedLocked() {
	s.gen++
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Delete removes config's entry for file id, if any.
func (s *Store) Delete(config string, id FileID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(key{config, id})
}

func (s *Store) deleteLocked(k key) {
	if _, ok := s.entries[k]; !ok {
		return
	}
	delete(s.entries, k)
	ids := slices.DeleteFunc(s.byInode[k.config][k.file.Inode], func(id FileID) bool { return id == k.file })
	if len(ids) == 0 {
		delete(s.byInode[k.config], k.file.Inode)
	} else {
		s.byInode[k.config][k.file.Inode] = ids
	}
	s.changedLocked()
}

// Forget removes every entry of config and its state (the config was
// deleted: adding it again later starts like a new config).
func (s *Store) Forget(config string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.entries {
		if k.config == config {
			s.deleteLocked(k)
		}
	}
	delete(s.byInode, config)
	if _, ok := s.configs[config]; ok {
		delete(s.configs, config)
		s.changedLocked()
	}
}

// Config returns what the store remembers about config; false when the
// config never ran with this store (its very first start).
func (s *Store) Config(config string) (ConfigState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.configs[config]
	return st, ok
}

// SetConfig records config's state.
func (s *Store) SetConfig(config string, st ConfigState) {
	st.Started = st.Started.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.configs[config]; ok && old == st {
		return
	}
	s.configs[config] = st
	s.changedLocked()
}

// LastWrite is when the checkpoint file loaded at start was written (its
// "written" time), zero when there was none. Files modified after it may be
// unknown to the checkpoint although the previous run saw them.
func (s *Store) LastWrite() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadedAt
}

// Start writes the store in the background until Shutdown: Delay after a
// change (longer when writes are slow, at most Interval), retrying failed
// writes every Interval. It returns at once; without a Path it does nothing.
func (s *Store) Start(_ context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.cfg.Path == "" || s.cancel != nil || s.stopped {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.writeLoop(ctx)
	}()
	return nil
}

func (s *Store) writeLoop(ctx context.Context) {
	t := time.NewTimer(0)
	<-t.C
	defer t.Stop()
	var failing bool
	for {
		if !failing {
			select {
			case <-ctx.Done():
				return
			case <-s.changed:
			}
		}
		t.Reset(s.writeDelay(failing))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Errors are logged and counted by Flush; the write is retried.
		failing = s.Flush() != nil
	}
}

// writeDelay is how long to gather changes before the next write.
func (s *Store) writeDelay(failing bool) time.Duration {
	if failing {
		return s.cfg.Interval
	}
	s.mu.Lock()
	took := s.writeTook
	s.mu.Unlock()
	return min(max(s.cfg.Delay, writeShare*took), max(s.cfg.Interval, s.cfg.Delay))
}

// Shutdown stops the background flushes and writes the final checkpoint. It
// is idempotent and safe without Start.
func (s *Store) Shutdown(ctx context.Context) error {
	s.lifeMu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.stopped = nil, true
	s.lifeMu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Flush()
}

// Flush writes the store to its file if anything changed since the last
// successful write. Failures are logged, counted and returned; memory keeps
// the positions, so the next Flush retries.
func (s *Store) Flush() error {
	if s.cfg.Path == "" {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()

	s.mu.Lock()
	gen := s.gen
	if gen == s.written {
		s.mu.Unlock()
		return nil
	}
	all := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		all = append(all, e)
	}
	configs := make(map[string]ConfigState, len(s.configs))
	for k, v := range s.configs {
		configs[k] = v
	}
	s.mu.Unlock()

	began := time.Now()
	data, err := encode(all, configs, s.now())
	if err == nil {
		err = writeAtomic(s.cfg.Path, data)
	}
	took := time.Since(began)
	if err != nil {
		s.mWriteErrors.Inc()
		s.log.Error("checkpoint write failed; positions stay in memory and the write is retried",
			"path", s.cfg.Path, "error", err)
		return err
	}
	s.mWrites.Inc()
	s.mu.Lock()
	s.written = gen
	s.lastOK = s.now()
	s.writeTook = took
	s.mu.Unlock()
	return nil
}

func (s *Store) load() error {
	data, err := os.ReadFile(s.cfg.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read checkpoint %s: %w (fix its permissions or set check_point_filename to a writable path)", s.cfg.Path, err)
	}
	entries, configs, written, err := decode(data)
	if err != nil {
		reason := "corrupt"
		if errors.Is(err, errVersion) {
			reason = "version"
		}
		s.mLoadErrors.WithLabelValues(reason).Inc()
		aside := s.cfg.Path + ".corrupt-" + strconv.FormatInt(s.now().Unix(), 10)
		if rerr := os.Rename(s.cfg.Path, aside); rerr != nil {
			s.log.Error("cannot rename undecodable checkpoint aside; it will be overwritten", "path", s.cfg.Path, "error", rerr)
			aside = ""
		}
		s.log.Error("checkpoint file cannot be decoded; starting without saved positions (files are read again per first-sight rules, expect duplicates)",
			"path", s.cfg.Path, "moved_to", aside, "error", err)
		return nil
	}
	for _, e := range entries {
		s.Put(e)
		if _, ok := configs[e.Config]; !ok {
			// Written before config states were recorded: the config ran.
			configs[e.Config] = ConfigState{}
		}
	}
	s.configs = configs
	s.loadedAt = written
	// What was just loaded is what is on disk.
	s.mu.Lock()
	s.written = s.gen
	s.mu.Unlock()
	// Drain the wake-up the loading Puts left: nothing is to be written.
	select {
	case <-s.changed:
	default:
	}
	s.log.Info("checkpoints loaded", "path", s.cfg.Path, "files", len(entries), "configs", len(configs), "written", written)
	return nil
}

// formatVersion is the version written; decode reads this one only. A new
// version must keep decoding the old ones.
const formatVersion = 1

var errVersion = errors.New("unsupported checkpoint version")

type fileFormat struct {
	Version int         `json:"version"`
	Written time.Time   `json:"written"`
	Files   []fileEntry `json:"files"`
	// Configs was added without a version change: older agents ignore it.
	Configs []configEntry `json:"configs,omitempty"`
}

type configEntry struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
	Match   string    `json:"match,omitempty"`
}

type fileEntry struct {
	Config  string    `json:"config"`
	Path    string    `json:"path"`
	Dev     uint64    `json:"dev"`
	Inode   uint64    `json:"inode"`
	SigHash string    `json:"sig_hash"` // hex: JSON numbers above 2^53 are unsafe in most tools
	SigSize uint32    `json:"sig_size"`
	Offset  int64     `json:"offset"`
	Size    int64     `json:"size"`
	Done    bool      `json:"done,omitempty"` // added without a version change; older agents resume at offset = size
	Updated time.Time `json:"updated"`
}

func encode(entries []Entry, configs map[string]ConfigState, now time.Time) ([]byte, error) {
	slices.SortFunc(entries, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Config, b.Config), cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.File.Dev, b.File.Dev), cmp.Compare(a.File.Inode, b.File.Inode))
	})
	f := fileFormat{Version: formatVersion, Written: now.UTC(), Files: make([]fileEntry, len(entries))}
	for i, e := range entries {
		f.Files[i] = fileEntry{
			Config: e.Config, Path: e.Path, Dev: e.File.Dev, Inode: e.File.Inode,
			SigHash: strconv.FormatUint(e.Sig.Hash, 16), SigSize: e.Sig.Size,
			Offset: e.Offset, Size: e.Size, Done: e.Done, Updated: e.Updated.UTC(),
		}
	}
	for name, c := range configs {
		f.Configs = append(f.Configs, configEntry{Name: name, Started: c.Started.UTC(), Match: c.Match})
	}
	slices.SortFunc(f.Configs, func(a, b configEntry) int { return cmp.Compare(a.Name, b.Name) })
	data, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	return append(data, '\n'), nil
}

// decode parses a checkpoint file. Any malformed entry makes the whole file
// suspect, so it is rejected rather than partly trusted.
func decode(data []byte) ([]Entry, map[string]ConfigState, time.Time, error) {
	var f fileFormat
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("decode checkpoint: %w", err)
	}
	if dec.More() {
		return nil, nil, time.Time{}, errors.New("decode checkpoint: trailing data after the JSON document")
	}
	if f.Version != formatVersion {
		return nil, nil, time.Time{}, fmt.Errorf("%w %d (this agent reads version %d)", errVersion, f.Version, formatVersion)
	}
	configs := make(map[string]ConfigState, len(f.Configs))
	for i, c := range f.Configs {
		if c.Name == "" {
			return nil, nil, time.Time{}, fmt.Errorf("decode checkpoint: configs[%d]: name must not be empty", i)
		}
		configs[c.Name] = ConfigState{Started: c.Started, Match: c.Match}
	}
	entries, err := decodeFiles(f.Files)
	return entries, configs, f.Written, err
}

func decodeFiles(files []fileEntry) ([]Entry, error) {
	out := make([]Entry, 0, len(files))
	for i, fe := range files {
		hash, err := strconv.ParseUint(fe.SigHash, 16, 64)
		switch {
		case err != nil:
			return nil, fmt.Errorf("decode checkpoint: files[%d].sig_hash %q: %w", i, fe.SigHash, err)
		case fe.Config == "" || fe.Path == "":
			return nil, fmt.Errorf("decode checkpoint: files[%d]: config and path must not be empty", i)
		case fe.SigSize > SignatureMax:
			return nil, fmt.Errorf("decode checkpoint: files[%d].sig_size %d exceeds %d", i, fe.SigSize, SignatureMax)
		case fe.Offset < 0 || fe.Size < 0:
			return nil, fmt.Errorf("decode checkpoint: files[%d]: negative offset or size", i)
		}
		out = append(out, Entry{
			Config: fe.Config, Path: fe.Path, File: FileID{Dev: fe.Dev, Inode: fe.Inode},
			Sig: Signature{Hash: hash, Size: fe.SigSize}, Offset: fe.Offset, Size: fe.Size, Done: fe.Done, Updated: fe.Updated,
		})
	}
	return out, nil
}

// writeAtomic replaces path with data so that a crash leaves either the old
// or the new content (fsutil.WriteFile), creating its directory.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create checkpoint directory %s: %w", dir, err)
	}
	return fsutil.WriteFile(path, data, 0o600)
}
