package file

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Config is one file collection config as the input needs it. The runtime
// fills it from the Logtail collection config (inputDetail, SDK defaults
// applied) and the agent instance config; tuning fields left zero get the
// defaults of DefaultConfig.
type Config struct {
	// Name is the collection config name. Checkpoints are keyed by it, so a
	// replacement input with the same name resumes where the old one stopped.
	Name string
	// LogPath is the directory to watch (inputDetail.logPath). Path
	// components may contain glob wildcards (/var/log/*/app).
	LogPath string
	// FilePattern is a glob on the file name (inputDetail.filePattern).
	FilePattern string
	// MaxDepth is how many directory levels below LogPath are watched; 0
	// watches LogPath only (inputDetail.maxDepth).
	MaxDepth int
	// Blacklists (inputDetail.advanced.blacklist): directory paths (the
	// directory and everything below it), file names and file paths, as
	// globs. A pattern with "**" lets * match across "/".
	DirBlacklist      []string
	FilenameBlacklist []string
	FilepathBlacklist []string
	// TailExisted reads the last TailSizeKB of every file present when the
	// config starts; without it only files modified in the last two minutes
	// are read that way and older ones from their end (inputDetail.tailExisted).
	TailExisted bool
	// TailSizeKB: a file seen for the first time, without checkpoint, is read
	// from its start when it is at most this large, else from this many KiB
	// before its end, at the next line start (advanced.tail_size_kb).
	TailSizeKB int
	// TopicFormat is none | group_topic | customized://TOPIC | a regular
	// expression matched against the whole file path: its groups give the
	// topic (joined with "_" when several) and named groups give tags
	// (inputDetail.topicFormat).
	TopicFormat string
	// GroupTopic is the machine group's topic, used by topicFormat group_topic.
	GroupTopic string
	// IgnoreDevice matches checkpoints by inode and signature only: on PV/NAS
	// volumes the device id changes when the pod is rescheduled.
	IgnoreDevice bool
	// Encoding is the files' encoding (inputDetail.fileEncoding): utf8 or
	// gbk. GBK is decoded to UTF-8 line by line.
	Encoding string
	// DiscardNonUTF8 replaces every byte that is not part of valid UTF-8 with
	// a space, as Logtail does (inputDetail.discardNonUtf8); affected lines
	// are counted.
	DiscardNonUTF8 bool

	// PollInterval is how often directories and files are stat'ed.
	PollInterval time.Duration
	// MaxReadBufferSize is the read chunk and the longest event; longer lines
	// are split and counted (max_read_buffer_size, at most 8 MiB).
	MaxReadBufferSize int
	// MaxBatchBytes and MaxBatchEvents bound one batch (one LogGroup).
	MaxBatchBytes  int
	MaxBatchEvents int
	// FlushTimeout: an unterminated last line (or open multiline event) is
	// emitted once the file has not grown for this long.
	FlushTimeout time.Duration
	// MaxOpenFiles bounds open descriptors: idle files are closed, least
	// recently read first, and reopened by identity when they grow.
	MaxOpenFiles int
	// CloseInactive closes a file that has not grown for this long.
	CloseInactive time.Duration
	// CloseRemovedAfter: a file deleted or rotated away is read to its end and
	// closed once it has not grown for this long (frees disk space).
	CloseRemovedAfter time.Duration
	// MaxInflightBatches bounds the batches of one file that are sent but
	// not yet acknowledged, and so the duplicates a crash can cause.
	MaxInflightBatches int
	// Readers is the number of goroutines reading files.
	Readers int
	// LagMetricFiles bounds the per-path lag series to the most lagging files.
	LagMetricFiles int
}

// Limits of the tuning knobs.
const (
	MaxReadBufferLimit = 8 << 20
	maxTailSizeKB      = 100 << 20 // Logtail accepts 0…100 GiB
	maxDepthLimit      = 100
)

// DefaultConfig returns the defaults: Logtail's for the collection fields
// (tail_size_kb 1024, max_read_buffer_size 512 KiB) and Sluice's tuning.
func DefaultConfig() Config {
	return Config{
		FilePattern:        "*",
		TopicFormat:        "none",
		TailSizeKB:         1024,
		PollInterval:       500 * time.Millisecond,
		MaxReadBufferSize:  512 << 10,
		MaxBatchBytes:      512 << 10,
		MaxBatchEvents:     4096,
		FlushTimeout:       3 * time.Second,
		MaxOpenFiles:       1024,
		CloseInactive:      5 * time.Minute,
		CloseRemovedAfter:  5 * time.Second,
		Readers:            2,
		MaxInflightBatches: 8,
		Encoding:           "utf8",
		LagMetricFiles:     100,
	}
}

// withDefaults fills zero tuning fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if c.FilePattern == "" {
		c.FilePattern = d.FilePattern
	}
	setD(&c.PollInterval, d.PollInterval)
	set(&c.MaxReadBufferSize, d.MaxReadBufferSize)
	set(&c.MaxBatchBytes, d.MaxBatchBytes)
	set(&c.MaxBatchEvents, d.MaxBatchEvents)
	setD(&c.FlushTimeout, d.FlushTimeout)
	set(&c.MaxOpenFiles, d.MaxOpenFiles)
	setD(&c.CloseInactive, d.CloseInactive)
	setD(&c.CloseRemovedAfter, d.CloseRemovedAfter)
	set(&c.Readers, d.Readers)
	set(&c.MaxInflightBatches, d.MaxInflightBatches)
	if c.Encoding == "" {
		c.Encoding = d.Encoding
	}
	if c.TopicFormat == "" {
		c.TopicFormat = d.TopicFormat
	}
	set(&c.LagMetricFiles, d.LagMetricFiles)
	return c
}

// Validate reports every problem, each naming its key and the rule.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Name == "" {
		add("configName must not be empty: checkpoints are keyed by it")
	}
	if c.LogPath == "" || !filepath.IsAbs(c.LogPath) {
		add("logPath must be an absolute directory path, got %q", c.LogPath)
	} else if _, err := newPathMatcher(c.LogPath); err != nil {
		add("logPath %q: %v", c.LogPath, err)
	}
	if _, err := filepath.Match(c.FilePattern, ""); err != nil {
		add("filePattern %q is not a valid glob: %v", c.FilePattern, err)
	}
	if c.MaxDepth < 0 || c.MaxDepth > maxDepthLimit {
		add("maxDepth must be between 0 (logPath only) and %d, got %d", maxDepthLimit, c.MaxDepth)
	}
	for _, bl := range []struct {
		name string
		list []string
	}{
		{"advanced.blacklist.dir_blacklist", c.DirBlacklist},
		{"advanced.blacklist.filepath_blacklist", c.FilepathBlacklist},
	} {
		name, list := bl.name, bl.list
		for i, p := range list {
			if !filepath.IsAbs(p) {
				add("%s[%d] %q must be an absolute path", name, i, p)
			} else if _, err := newGlob(p); err != nil {
				add("%s[%d] %q: %v", name, i, p, err)
			}
		}
	}
	for i, p := range c.FilenameBlacklist {
		if _, err := newGlob(p); err != nil {
			add("advanced.blacklist.filename_blacklist[%d] %q: %v", i, p, err)
		}
	}
	if c.TailSizeKB < 0 || c.TailSizeKB > maxTailSizeKB {
		add("advanced.tail_size_kb must be between 0 and %d (100 GiB), got %d", maxTailSizeKB, c.TailSizeKB)
	}
	if _, err := newTopic(c.TopicFormat, c.GroupTopic); err != nil {
		add("topicFormat: %v", err)
	}
	if c.PollInterval < 10*time.Millisecond {
		add("poll interval must be at least 10ms, got %s", c.PollInterval)
	}
	if c.MaxReadBufferSize < 1024 || c.MaxReadBufferSize > MaxReadBufferLimit {
		add("max_read_buffer_size must be between 1 KiB and 8 MiB, got %d", c.MaxReadBufferSize)
	}
	if c.MaxBatchBytes < 1 || c.MaxBatchEvents < 1 {
		add("batch limits must be positive, got %d bytes and %d events", c.MaxBatchBytes, c.MaxBatchEvents)
	}
	if c.FlushTimeout < 0 || c.CloseInactive < 0 || c.CloseRemovedAfter < 0 {
		add("timeouts must not be negative")
	}
	if c.MaxOpenFiles < 1 || c.Readers < 1 || c.LagMetricFiles < 0 || c.MaxInflightBatches < 1 {
		add("max open files, readers and max in-flight batches must be positive")
	}
	switch strings.ToLower(c.Encoding) {
	case "utf8", "utf-8", "gbk":
	default:
		add("fileEncoding must be utf8 or gbk, got %q", c.Encoding)
	}
	return errors.Join(errs...)
}
