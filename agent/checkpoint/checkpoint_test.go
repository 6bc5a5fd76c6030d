package checkpoint

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t *testing.T, path string) (*Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(Config{Path: path, Interval: time.Hour}, Settings{Registerer: reg})
	require.NoError(t, err)
	return s, reg
}

func entry(config, path string, ino uint64, off int64) Entry {
	return Entry{
		Config: config, Path: path, File: FileID{Dev: 7, Inode: ino},
		Sig: Sign([]byte("first line\n")), Offset: off, Size: off + 10,
		Updated: time.Unix(1700000000, 0).UTC(),
	}
}

func TestPersistAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "checkpoint.json")
	s, _ := newStore(t, path)
	a, b := entry("c1", "/logs/a.log", 11, 100), entry("c2", "/logs/a.log", 11, 5)
	s.Put(a)
	s.Put(b)
	require.NoError(t, s.Shutdown(context.Background()))

	s2, _ := newStore(t, path)
	any := func(Signature) bool { return true }
	got, ok := s2.Find("c1", FileID{7, 11}, "", false, any)
	require.True(t, ok)
	require.Equal(t, a, got)
	got, ok = s2.Find("c2", FileID{7, 11}, "", false, any)
	require.True(t, ok)
	require.Equal(t, int64(5), got.Offset, "entries of different configs for the same file are independent")
	_, ok = s2.Find("c3", FileID{7, 11}, "", false, any)
	require.False(t, ok)

	// No temporary files are left behind.
	names, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, names, 1)
}

func TestFindChecksSignatureAndIgnoreDevice(t *testing.T) {
	s, _ := newStore(t, "")
	e := entry("c", "/logs/a.log", 42, 10)
	s.Put(e)
	prefix := []byte("first line\nsecond line\n")
	sigOK := func(sig Signature) bool { return sig.Matches(prefix) }

	_, ok := s.Find("c", FileID{Dev: 9, Inode: 42}, "/logs/b.log", false, sigOK)
	require.False(t, ok, "a different device and path is a different file unless IgnoreDevice")
	got, ok := s.Find("c", FileID{Dev: 9, Inode: 42}, "/logs/a.log", false, sigOK)
	require.True(t, ok, "the same path, inode and signature on a new device: the volume was mounted again (a PVC after its pod moved)")
	require.Equal(t, int64(10), got.Offset)
	other := func(sig Signature) bool { return sig.Matches([]byte("another file, same inode\n")) }
	_, ok = s.Find("c", FileID{Dev: 9, Inode: 42}, "/logs/a.log", false, other)
	require.False(t, ok, "same path and inode with another signature is another file")
	got, ok = s.Find("c", FileID{Dev: 9, Inode: 42}, "", true, sigOK)
	require.True(t, ok, "IgnoreDevice matches inode and signature")
	require.Equal(t, int64(10), got.Offset)

	_, ok = s.Find("c", FileID{Dev: 7, Inode: 42}, "", false, other)
	require.False(t, ok, "same dev+inode with a different signature is a reused inode")
	_, ok = s.Find("c", FileID{Dev: 9, Inode: 42}, "", true, other)
	require.False(t, ok)

	s.Delete("c", e.File)
	_, ok = s.Find("c", FileID{Dev: 9, Inode: 42}, "", true, sigOK)
	require.False(t, ok)
}

func TestSignature(t *testing.T) {
	long := []byte(strings.Repeat("x", 3000))
	sig := Sign(long)
	require.Equal(t, uint32(SignatureMax), sig.Size)
	require.True(t, sig.Matches(long))
	require.True(t, sig.Matches(long[:SignatureMax]))
	require.False(t, sig.Matches(long[:SignatureMax-1]), "a shorter file was truncated")
	grown := Sign([]byte("abc"))
	require.True(t, grown.Matches([]byte("abcdef")), "a growing file keeps its identity")
	require.False(t, grown.Matches([]byte("abXdef")))
}

func TestCorruptFileIsMovedAsideNotFatal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint.json")
	for _, bad := range []string{
		`{"version":1,"files":[{"config":"c","path":"/a","sig_hash":"zz"}]}`,
		`{"version":1,"files":[`,
		"\x00\x01garbage",
		`{"version":1,"files":[]} trailing`,
		`{"version":1,"files":[{"config":"","path":"/a","sig_hash":"1"}]}`,
	} {
		require.NoError(t, os.WriteFile(path, []byte(bad), 0o644))
		s, reg := newStore(t, path)
		require.Empty(t, s.Entries("c"))
		require.Equal(t, 1.0, testutil.ToFloat64(s.mLoadErrors.WithLabelValues("corrupt")), "input %q", bad)
		_, err := os.Stat(path)
		require.ErrorIs(t, err, os.ErrNotExist, "the corrupt file is moved aside")
		matches, _ := filepath.Glob(path + ".corrupt-*")
		require.NotEmpty(t, matches)
		for _, m := range matches {
			require.NoError(t, os.Remove(m))
		}
		// The store works normally afterwards.
		s.Put(entry("c", "/a", 1, 1))
		require.NoError(t, s.Flush())
		require.NoError(t, os.Remove(path))
		_ = reg
	}
}

func TestNewerVersionIsReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"version":99,"files":[]}`), 0o644))
	s, _ := newStore(t, path)
	require.Equal(t, 1.0, testutil.ToFloat64(s.mLoadErrors.WithLabelValues("version")))
}

func TestUnreadableFileIsAnError(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads anything; use a directory in place of the file instead.
		path := t.TempDir()
		_, err := New(Config{Path: path, Interval: time.Second}, Settings{})
		require.ErrorContains(t, err, "read checkpoint")
		return
	}
	path := filepath.Join(t.TempDir(), "cp.json")
	require.NoError(t, os.WriteFile(path, []byte(`{}`), 0o000))
	_, err := New(Config{Path: path, Interval: time.Second}, Settings{})
	require.ErrorContains(t, err, "read checkpoint")
}

func TestBackgroundFlushAndAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	now := time.Unix(1000, 0)
	s, err := New(Config{Path: path, Interval: 10 * time.Millisecond}, Settings{Now: func() time.Time { return now }})
	require.NoError(t, err)
	require.Equal(t, 0.0, s.ageSeconds())
	s.Put(entry("c", "/a", 1, 1))
	now = now.Add(3 * time.Second)
	require.Equal(t, 3.0, s.ageSeconds(), "unsaved changes age")
	require.NoError(t, s.Start(context.Background()))
	require.Eventually(t, func() bool {
		_, err := os.Stat(path)
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()), "idempotent")
	require.Equal(t, 0.0, s.ageSeconds())
}

func TestShutdownWithoutStart(t *testing.T) {
	s, _ := newStore(t, filepath.Join(t.TempDir(), "cp.json"))
	require.NoError(t, s.Shutdown(context.Background()))
}

func TestWriteErrorIsCountedAndRetried(t *testing.T) {
	sub := filepath.Join(t.TempDir(), "sub")
	s, _ := newStore(t, filepath.Join(sub, "cp.json"))
	// The checkpoint directory becomes a regular file: every write fails.
	require.NoError(t, os.WriteFile(sub, nil, 0o644))
	s.Put(entry("c", "/a", 1, 1))
	require.Error(t, s.Flush())
	require.Equal(t, 1.0, testutil.ToFloat64(s.mWriteErrors))
	require.NotZero(t, s.gen-s.written, "the change is still pending")
}

func TestForget(t *testing.T) {
	s, _ := newStore(t, "")
	s.Put(entry("a", "/x", 1, 1))
	s.Put(entry("a", "/y", 2, 1))
	s.Put(entry("b", "/x", 1, 1))
	s.Forget("a")
	require.Empty(t, s.Entries("a"))
	require.Len(t, s.Entries("b"), 1)
}

func TestValidate(t *testing.T) {
	require.ErrorContains(t, Config{Path: "/x"}.Validate(), "check_point_dump_interval")
	require.ErrorContains(t, Config{Delay: -1}.Validate(), "delay")
	require.NoError(t, Config{}.Validate())
}

func FuzzDecode(f *testing.F) {
	done := entry("c", "/logs/a.log.1", 4, 50)
	done.Done = true
	good, err := encode([]Entry{entry("c", "/logs/a.log", 3, 40), done},
		map[string]ConfigState{"c": {Started: time.Unix(5, 0), Match: "m"}}, time.Unix(0, 0))
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"version":1,"files":[]}`))
	f.Add([]byte(`{"version":1,"files":[],"configs":[{"name":""}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, configs, _, err := decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same entries.
		again, err := encode(entries, configs, time.Unix(0, 0))
		require.NoError(t, err)
		back, backConfigs, _, err := decode(again)
		require.NoError(t, err)
		require.Equal(t, len(entries), len(back))
		require.Equal(t, len(configs), len(backConfigs))
	})
}

// A change is on disk within about the write delay, without waiting for
// the interval (check_point_dump_interval): an agent killed a moment after
// acknowledged progress repeats only that moment.
func TestChangesAreWrittenPromptly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	reg := prometheus.NewRegistry()
	s, err := New(Config{Path: path, Interval: time.Hour, Delay: 20 * time.Millisecond}, Settings{Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	defer func() { require.NoError(t, s.Shutdown(context.Background())) }()
	onDisk := func() int64 {
		data, err := os.ReadFile(path)
		if err != nil {
			return -1
		}
		es, _, _, err := decode(data)
		require.NoError(t, err)
		if len(es) == 0 {
			return -1
		}
		return es[0].Offset
	}
	for off := int64(1); off <= 3; off++ {
		s.Put(entry("c", "/a", 1, off*100))
		require.Eventually(t, func() bool { return onDisk() == off*100 }, 10*time.Second, 2*time.Millisecond,
			"offset %d written long before the one-hour interval", off*100)
	}
	// Many changes in a burst are one write or a few, not one each.
	before := testutil.ToFloat64(s.mWrites)
	for off := int64(1000); off < 1100; off++ {
		s.Put(entry("c", "/a", 1, off))
	}
	require.Eventually(t, func() bool { return onDisk() == 1099 }, 10*time.Second, 2*time.Millisecond)
	require.LessOrEqual(t, testutil.ToFloat64(s.mWrites)-before, 10.0, "100 changes batched")
}

func TestWriteDelayGrowsWithSlowWritesUpToInterval(t *testing.T) {
	s, err := New(Config{Path: "/unused", Interval: 2 * time.Second, Delay: 100 * time.Millisecond}, Settings{})
	require.NoError(t, err)
	require.Equal(t, 100*time.Millisecond, s.writeDelay(false))
	s.writeTook = 20 * time.Millisecond
	require.Equal(t, writeShare*20*time.Millisecond, s.writeDelay(false), "writing takes at most 1/writeShare of the time")
	s.writeTook = time.Second
	require.Equal(t, 2*time.Second, s.writeDelay(false), "never beyond check_point_dump_interval")
	require.Equal(t, 2*time.Second, s.writeDelay(true), "a failed write is retried at the interval")
}

func TestConfigStateAndDoneEntriesPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	s, _ := newStore(t, path)
	_, ok := s.Config("c")
	require.False(t, ok, "a config never started")
	started := time.Unix(1700000000, 0).UTC()
	s.SetConfig("c", ConfigState{Started: started, Match: "abc"})
	done := entry("c", "/logs/a.log", 9, 100)
	done.Done = true
	s.Put(done)
	require.True(t, s.LastWrite().IsZero(), "no file loaded")
	before := time.Now()
	require.NoError(t, s.Shutdown(context.Background()))

	s2, _ := newStore(t, path)
	st, ok := s2.Config("c")
	require.True(t, ok)
	require.Equal(t, ConfigState{Started: started, Match: "abc"}, st)
	es := s2.Entries("c")
	require.Len(t, es, 1)
	require.True(t, es[0].Done)
	require.WithinDuration(t, before, s2.LastWrite(), 5*time.Second, "when the loaded file was written")

	s2.Forget("c")
	_, ok = s2.Config("c")
	require.False(t, ok, "a deleted config starts like a new one when added again")
}

// A checkpoint written before configs were recorded: every config with an
// entry ran before, so it is not at its first start.
func TestOldFileWithoutConfigsMeansConfigsRan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"version":1,"written":"2026-01-01T00:00:00Z","files":[
		{"config":"c","path":"/a","dev":1,"inode":2,"sig_hash":"0","sig_size":0,"offset":0,"size":0,"updated":"2026-01-01T00:00:00Z"}]}`), 0o644))
	s, _ := newStore(t, path)
	_, ok := s.Config("c")
	require.True(t, ok)
	_, ok = s.Config("other")
	require.False(t, ok)
	require.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), s.LastWrite())
}
