// Package checkpoint remembers where each file input stopped: per file its
// identity (device, inode and a signature of its first bytes), the offset up
// to which every batch has been acknowledged, its path, the config that reads
// it and when the entry last changed.
//
// One Store is shared by all inputs of an agent and keyed by config name and
// file identity, so an input that the runtime replaces for a changed config
// resumes exactly where its predecessor stopped. The store lives in memory;
// Flush writes it atomically (temporary file, fsync, rename, directory fsync)
// and Start runs Flush on an interval. A file that cannot be decoded is
// reported (error log and metric), renamed aside to <path>.corrupt-<unix
// seconds> and replaced by an empty store: losing positions duplicates data,
// refusing to start would lose all of it.
//
// The file is versioned JSON: small (a few hundred bytes per file), readable
// by an operator with jq when positions look wrong, and written at most every
// few seconds, so a binary codec would buy nothing worth the opacity.
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
	Size    int64
	Updated time.Time
}

// Config is the store's configuration.
type Config struct {
	// Path of the checkpoint file; empty keeps checkpoints in memory only.
	Path string
	// Interval between background flushes (check_point_dump_interval).
	Interval time.Duration
}

// Validate checks c.
func (c Config) Validate() error {
	if c.Path != "" && c.Interval <= 0 {
		return fmt.Errorf("checkpoint interval must be positive, got %s: set check_point_dump_interval to a few seconds", c.Interval)
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

	mu      sync.Mutex
	entries map[key]Entry
	byInode map[string]map[uint64][]FileID // config → inode → ids, for IgnoreDevice lookups
	gen     uint64                         // bumped on every change
	written uint64                         // gen of the last successful write
	lastOK  time.Time                      // last successful write, or when the store opened

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

// Find returns config's entry for file id — same device and inode, or with
// ignoreDevice the same inode on any device (PV/NAS volumes get a new device
// id when a pod is rescheduled) — for which sigOK accepts the saved
// signature. The caller checks the signature against the file's first bytes.
func (s *Store) Find(config string, id FileID, ignoreDevice bool, sigOK func(Signature) bool) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key{config, id}]; ok && sigOK(e.Sig) {
		return e, true
	}
	if !ignoreDevice {
		return Entry{}, false
	}
	var best Entry
	found := false
	for _, other := range s.byInode[config][id.Inode] {
		e := s.entries[key{config, other}]
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
	s.gen++
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
	s.gen++
}

// Forget removes every entry of config (the config was deleted).
func (s *Store) Forget(config string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.entries {
		if k.config == config {
			s.deleteLocked(k)
		}
	}
	delete(s.byInode, config)
}

// Start flushes every cfg.Interval in the background until Shutdown. It
// returns at once; without a Path it does nothing.
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
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Errors are logged and counted by Flush; the next tick retries.
				_ = s.Flush()
			}
		}
	}()
	return nil
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
	s.mu.Unlock()

	data, err := encode(all, s.now())
	if err == nil {
		err = writeAtomic(s.cfg.Path, data)
	}
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
	entries, err := decode(data)
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
	}
	// What was just loaded is what is on disk.
	s.written = s.gen
	s.log.Info("checkpoints loaded", "path", s.cfg.Path, "files", len(entries))
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
	Updated time.Time `json:"updated"`
}

func encode(entries []Entry, now time.Time) ([]byte, error) {
	slices.SortFunc(entries, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Config, b.Config), cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.File.Dev, b.File.Dev), cmp.Compare(a.File.Inode, b.File.Inode))
	})
	f := fileFormat{Version: formatVersion, Written: now.UTC(), Files: make([]fileEntry, len(entries))}
	for i, e := range entries {
		f.Files[i] = fileEntry{
			Config: e.Config, Path: e.Path, Dev: e.File.Dev, Inode: e.File.Inode,
			SigHash: strconv.FormatUint(e.Sig.Hash, 16), SigSize: e.Sig.Size,
			Offset: e.Offset, Size: e.Size, Updated: e.Updated.UTC(),
		}
	}
	data, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	return append(data, '\n'), nil
}

// decode parses a checkpoint file. Any malformed entry makes the whole file
// suspect, so it is rejected rather than partly trusted.
func decode(data []byte) ([]Entry, error) {
	var f fileFormat
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode checkpoint: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode checkpoint: trailing data after the JSON document")
	}
	if f.Version != formatVersion {
		return nil, fmt.Errorf("%w %d (this agent reads version %d)", errVersion, f.Version, formatVersion)
	}
	out := make([]Entry, 0, len(f.Files))
	for i, fe := range f.Files {
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
			Sig: Signature{Hash: hash, Size: fe.SigSize}, Offset: fe.Offset, Size: fe.Size, Updated: fe.Updated,
		})
	}
	return out, nil
}

// writeAtomic replaces path with data so that a crash leaves either the old
// or the new content: temporary file in the same directory, fsync, rename,
// then fsync of the directory so the rename itself is durable.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create checkpoint directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary checkpoint in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open checkpoint directory %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("fsync checkpoint directory %s: %w", dir, err)
	}
	return nil
}
