// Package file is the file input of sluice-agent (sidecar and shared-PVC
// modes): it discovers files under a logPath, follows them across rename,
// copytruncate and compress-and-delete rotations, cuts them into lines and
// events, and emits one pipeline.Batch per file and read, persisting an
// offset only once every batch before it was acknowledged.
//
// Use:
//
//	in, err := file.New(cfg, next, file.Settings{Logger: log, Registerer: reg,
//		Checkpoints: store, NewSplitter: func() (file.Splitter, error) { return multiline.New(mcfg) }})
//	in.Start(ctx) // returns at once
//	...
//	in.Shutdown(ctx) // stop reading, wait for acks until ctx ends, save checkpoints
//
// Discovery: inotify (github.com/fsnotify/fsnotify) on every watched
// directory reports a created or renamed-in file at once, and the file is
// opened then — as Fluent Bit's in_tail does — so a file that exists for a
// few milliseconds is still read through its descriptor. Stat polling every
// PollInterval stays the source of truth (inotify misses events on NFS and
// overlay volumes, overflows its queue, and has per-user watch limits): the
// matched directories are checked (re-listed only when their mtime moved)
// and candidate files stat'ed; files idle for a minute or more are stat'ed
// on every 4th (10th after ten minutes) pass only.
//
// A file's life is tracked from discovery, not from its first read: its
// identity and start offset go into the checkpoint store the moment it is
// found (written within the store's batching delay), and the store's first
// write happens right after the first discovery pass, so an agent in a
// crash loop keeps its positions. Where reading starts: at the checkpoint;
// else, for files present at the config's very first start, by Logtail's
// rules (last tail_size_kb, or the end of old files without tailExisted,
// logged at INFO with the bytes skipped); else — every file that appeared
// later — at offset 0.
//
// Rotation: a file renamed away or deleted keeps its descriptor and is read
// to its end (the approach of Logtail's rotated-reader queue and Filebeat's
// harvesters), then closed once idle for CloseRemovedAfter (freeing a
// deleted file's space); its checkpoint entry stays as a Done tombstone
// while the file exists. When a path changes hands, files beside it with
// names that extend it (app.log.1, app.log-20260101.gz) and content the input
// does not know are read from their start; compressed ones (.gz, .zst, .bz2,
// .lz4) are decompressed — their identity is their content's first bytes,
// so a compressed copy of a file already read is recognised, not read twice
// and not assumed read. After a restart the same happens for such files
// modified since the checkpoint was last written. Bytes of a file that
// disappeared before it could be read are counted in
// sluice_file_lost_bytes_total and logged at WARN with the path.
//
// Identity is device+inode plus a signature of the first ≤1024 bytes (see
// agent/checkpoint). The signature is re-checked only when a file is about to
// be read, which tells a truncated-and-rewritten file or a reused inode from
// the file the position belongs to.
//
// The line reader is hand-written rather than bufio.Scanner: it reads large
// chunks with pread at explicit offsets (so a position is always a file
// offset and a rewind is a number), splits with bytes.IndexByte, cuts
// over-long lines at max_read_buffer_size instead of failing, and keeps no
// per-file buffer between reads (10,000 files must not cost 10,000 buffers).
package file

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/checkpoint"
	"github.com/sluicelog/sluice/agent/pipeline"
)

// Splitter joins lines into events; *multiline.Splitter implements it.
// Push receives a line without its newline and the file offset just after
// it; emit receives a complete event and the offset just after it, and the
// bytes are valid only during the call.
type Splitter interface {
	Start(off int64) // the offset of the first line it will be given
	Push(line []byte, end int64, emit func(event []byte, end int64))
	Flush(emit func(event []byte, end int64))
	Pending() bool
}

// Settings carry what the input needs from the agent.
type Settings struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nothing
	// Checkpoints is the agent's shared store; required.
	Checkpoints *checkpoint.Store
	// NewSplitter makes the per-file multiline splitter, e.g.
	// func() (file.Splitter, error) { return multiline.New(mcfg) }.
	// Nil makes every line an event without going through a splitter.
	NewSplitter func() (Splitter, error)

	// NewDecoder, when set, makes each file's Decoder (container runtime
	// line formats); it replaces NewSplitter.
	NewDecoder func(path string) (Decoder, error)
	// Dirs, when set, replaces the expansion of LogPath: every discovery
	// pass it appends the directories to watch now (files inside
	// containers, whose host directories come and go with the pods).
	Dirs func(dst []string) []string
	// Accept, when set, is asked about every matched file not yet followed;
	// false leaves it unread and asks again on the next pass (a container
	// whose metadata has not arrived, or that the config does not select).
	Accept func(path string) bool
	// Tags, when set, adds tags to every batch of the file found at path.
	// It is called per batch, so metadata that arrives late is used from
	// then on.
	Tags func(path string, add func(key, value string))
	// PathTag, when set, gives the __path__ tag and the topicFormat source
	// of a file (the path inside its container); default: the path itself.
	PathTag func(path string) string
}

// recentlyModified: without tailExisted, a file present at config start is
// still read (tail rules) when it changed this recently — it is being
// written, so its last lines are the ones the user expects to see.
const recentlyModified = 2 * time.Minute

// jobBudget bounds the bytes one worker reads from one file before giving
// the other files a turn.
const jobBudget = 32 << 20

// Input is one file collection config at work.
type Input struct {
	cfg         Config
	next        pipeline.Consumer
	log         *slog.Logger
	store       *checkpoint.Store
	newSplitter func() (Splitter, error)
	m           *metrics
	topicWarned atomic.Bool // the path regex's first miss was logged
	paths       *pathMatcher
	dirBL       globList
	nameBL      globList
	pathBL      globList
	topic       *topic
	gbk         bool
	hooks       hooks

	mu         sync.Mutex
	byPath     map[string]*tracked
	byID       map[checkpoint.FileID]*tracked
	all        map[*tracked]struct{}
	gen        uint64
	stats      uint64 // file stats made by discovery (benchmarks report it)
	dirs       []string
	dirCache   map[string]*dirList          // scanner-only
	visited    map[checkpoint.FileID]uint64 // directories listed in pass gen; scanner-only
	replaced   []rotCheck                   // paths whose file changed this pass; scanner-only
	pathGone   map[string]time.Time         // paths that lost their file, since when; scanner-only
	copies     []copyCheck                  // content truncated away, its copy not found yet; guarded by mu
	recheck    map[string]time.Time         // compressed siblings still being written, since when; guarded by mu
	unreadable map[string]bool              // compressed files warned about; guarded by mu
	found      []*tracked                   // files found or adopted since they were last queued; guarded by mu
	orphans    []orphan                     // files that left their path before they were opened; guarded by mu
	adoptions  map[string][]time.Time       // path → when files of unknown content were adopted beside it; guarded by mu
	lastPass   time.Time                    // start of the current pass
	prevPass   time.Time                    // start of the previous pass
	samples    []lagSample

	// Scanner-only state of the config's start and of inotify.
	firstStart  bool      // the config's very first start: existing files follow the tail rules
	startedAt   time.Time // when this start began: files born later are new (bornAfterStart)
	lastWrite   time.Time // when the checkpoint loaded at start was written
	watcher     *fsnotify.Watcher
	watched     map[string]watchedDir
	watchFull   time.Time // inotify watch limit reached: poll only until then
	scanBuf     []byte    // signature buffer of discovery
	orphanGrace time.Duration
	gc          doneGC

	work     chan *tracked
	open     atomic.Int64
	inflight atomic.Int64
	ackWake  chan struct{}
	closed   atomic.Bool

	lifeMu  sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	stopped bool
}

// New validates cfg and returns an input that sends to next.
func New(cfg Config, next pipeline.Consumer, set Settings) (*Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("file input %q: %w", cfg.Name, err)
	}
	if next == nil {
		return nil, errors.New("file input: next consumer is nil")
	}
	if set.Checkpoints == nil {
		return nil, errors.New("file input: Settings.Checkpoints is nil: the input needs the agent's checkpoint store")
	}
	cfg = cfg.withDefaults()
	in := &Input{
		cfg:         cfg,
		next:        next,
		log:         set.Logger,
		store:       set.Checkpoints,
		newSplitter: set.NewSplitter,
		hooks: hooks{newDecoder: set.NewDecoder, dirs: set.Dirs, accept: set.Accept,
			tags: set.Tags, pathTag: set.PathTag},
		gbk:         strings.EqualFold(cfg.Encoding, "gbk"),
		byPath:      make(map[string]*tracked),
		byID:        make(map[checkpoint.FileID]*tracked),
		all:         make(map[*tracked]struct{}),
		pathGone:    make(map[string]time.Time),
		watched:     make(map[string]watchedDir),
		recheck:     make(map[string]time.Time),
		adoptions:   make(map[string][]time.Time),
		orphanGrace: orphanGrace,
		scanBuf:     make([]byte, checkpoint.SignatureMax),
		work:        make(chan *tracked, 4096),
		ackWake:     make(chan struct{}, 1),
	}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	in.log = in.log.With("config", cfg.Name)
	var err error
	if in.paths, err = newPathMatcher(cfg.LogPath); err != nil {
		return nil, err
	}
	if in.dirBL, err = newGlobList(cfg.DirBlacklist); err != nil {
		return nil, err
	}
	if in.nameBL, err = newGlobList(cfg.FilenameBlacklist); err != nil {
		return nil, err
	}
	if in.pathBL, err = newGlobList(cfg.FilepathBlacklist); err != nil {
		return nil, err
	}
	if in.topic, err = newTopic(cfg.TopicFormat, cfg.GroupTopic); err != nil {
		return nil, err
	}
	if in.hooks.newDecoder != nil {
		in.newSplitter = nil
	}
	if in.newSplitter != nil {
		if _, err := in.newSplitter(); err != nil {
			return nil, fmt.Errorf("file input %q: multiline: %w", cfg.Name, err)
		}
	}
	if in.m, err = newMetrics(set.Registerer, cfg.Name); err != nil {
		return nil, err
	}
	return in, nil
}

// Start begins discovery and reading in the background and returns at once.
func (in *Input) Start(_ context.Context) error {
	in.lifeMu.Lock()
	defer in.lifeMu.Unlock()
	if in.started || in.stopped {
		return nil
	}
	in.started = true
	in.ctx, in.cancel = context.WithCancel(context.Background())
	for range in.cfg.Readers {
		w := newWorker(in)
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			w.run(in.ctx)
		}()
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.scanLoop(in.ctx)
	}()
	return nil
}

// Shutdown stops reading, waits until ctx ends for the batches already sent
// to be acknowledged, records their offsets, closes the files and flushes
// the checkpoint store. Data read but not acknowledged is read again after a
// restart. Shutdown is idempotent and safe without Start.
func (in *Input) Shutdown(ctx context.Context) error {
	in.lifeMu.Lock()
	if in.stopped {
		in.lifeMu.Unlock()
		return nil
	}
	in.stopped = true
	cancel := in.cancel
	in.lifeMu.Unlock()
	var errs []error
	if cancel != nil {
		cancel()
		done := make(chan struct{})
		go func() { in.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			// A consumer ignoring its context keeps a worker; nothing more
			// can be done than to report it.
			errs = append(errs, fmt.Errorf("file input %q: readers did not stop: %w", in.cfg.Name, ctx.Err()))
		}
	}
	for in.inflight.Load() > 0 {
		select {
		case <-in.ackWake:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("file input %q: %d batches unacknowledged at shutdown (they are read again after restart): %w",
				in.cfg.Name, in.inflight.Load(), ctx.Err()))
		}
		if ctx.Err() != nil {
			break
		}
	}
	in.closed.Store(true)
	in.mu.Lock()
	for f := range in.all {
		f.win.close()
		if f.fd != nil {
			in.closeFD(f)
		}
	}
	in.mu.Unlock()
	in.m.unregister()
	if err := in.store.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("file input %q: save checkpoints: %w", in.cfg.Name, err))
	}
	return errors.Join(errs...)
}

func (in *Input) ackDone() {
	in.inflight.Add(-1)
	select {
	case in.ackWake <- struct{}{}:
	default:
	}
}

// closeFD closes f's descriptor; in.mu is held.
func (in *Input) closeFD(f *tracked) {
	_ = f.fd.Close()
	f.fd = nil
	if f.z != nil {
		f.z.close()
		f.z = nil
	}
	in.open.Add(-1)
	in.m.openFiles.Dec()
}

// setFD makes fd f's descriptor, counted in the open files; in.mu is held.
func (in *Input) setFD(f *tracked, fd *os.File) {
	f.fd = fd
	in.open.Add(1)
	in.m.openFiles.Inc()
}

// tracked is one file the input follows.
type tracked struct {
	// Guarded by Input.mu.
	path    string // matched path; empty once rotated away or deleted
	tagPath string // __path__ and topic source: the path it was found at
	id      checkpoint.FileID
	size    int64
	found   int64 // size when discovery first saw it: only that part is subject to the tail rules
	mtime   int64
	seen    uint64
	gone    bool
	changed bool // size or mtime moved since the last read
	queued  bool
	busy    bool
	removed bool
	deleted bool // removed, and its last link was gone then
	retired bool // removed, its inode reused: its entry is a tombstone by content
	// discovering: found, being opened and recorded by the scanner; not
	// queued, dropped or closed until that is done.
	discovering bool
	initial     bool  // present in the config's first discovery pass
	resume      int64 // ≥ 0: found by identity after a restart, start here
	fd          *os.File
	z           *zsource // set for a compressed rotated file: read through it, not fd
	retryAt     time.Time

	lastGrow     atomic.Int64 // unix nanoseconds of the last observed growth
	readEnd      atomic.Int64 // offset up to which the file was looked at
	readOff      atomic.Int64 // offset of the next line not yet handed on
	pendingFlush atomic.Bool  // an unterminated line or open event waits

	// Owned by the worker that has the file busy.
	init         bool
	more         bool
	afterPartial bool      // an unterminated line was flushed at the read offset
	judge        bool      // new since start, read from 0: first decide whether it is a copy (judgeCopy)
	judgeSince   time.Time // when judging started
	waitLogged   bool      // judgeCopy logged that it waits for the source's truncation
	sig          checkpoint.Signature
	splitter     Splitter
	decoder      Decoder
	pathTag      string // __path__: tagPath, or what Settings.PathTag made of it
	topic        string
	tags         [][2]string

	win   window
	input *Input
}
