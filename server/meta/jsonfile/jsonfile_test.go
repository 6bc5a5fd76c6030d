package jsonfile_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/meta/jsonfile"
	"github.com/sluicelog/sluice/server/meta/metatest"
)

func TestConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store {
		s, err := jsonfile.Open(t.TempDir())
		require.NoError(t, err)
		return s
	})
}

func TestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := jsonfile.Open(dir)
	require.NoError(t, err)
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p", Description: "d"}))
	require.NoError(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l", TTL: 7}))
	require.NoError(t, s.PutIndex(ctx, "p", "l", index.Config{Keys: map[string]index.KeyConfig{"k": {Type: index.TypeLong, DocValue: true}}}))
	require.NoError(t, s.CreateMachineGroup(ctx, meta.MachineGroup{Project: "p", Name: "g"}))
	require.NoError(t, s.CreateConfig(ctx, meta.Config{Project: "p", Name: "c", Raw: json.RawMessage(`{"a":1}`)}))
	require.NoError(t, s.ApplyConfig(ctx, "p", "g", "c"))
	require.NoError(t, s.PutAccessKey(ctx, meta.AccessKey{ID: "id", Secret: "sec", Admin: true}))
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	require.NoError(t, s.PutConsoleSession(ctx, meta.ConsoleSession{ID: "sid", KeyID: "id", SecretMAC: "mac", CSRFToken: "csrf", Created: t0, LastUsed: t0}))
	require.NoError(t, s.TouchConsoleSession(ctx, "sid", t0.Add(time.Minute)))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")

	fi, err := os.Stat(filepath.Join(dir, jsonfile.FileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the file holds secrets")

	s, err = jsonfile.Open(dir)
	require.NoError(t, err)
	defer s.Close()
	ls, err := s.GetLogstore(ctx, "p", "l")
	require.NoError(t, err)
	require.Equal(t, 7, ls.TTL)
	idx, err := s.GetIndex(ctx, "p", "l")
	require.NoError(t, err)
	require.True(t, idx.Keys["k"].DocValue)
	applied, err := s.AppliedConfigs(ctx, "p", "g")
	require.NoError(t, err)
	require.Equal(t, []string{"c"}, applied)
	k, err := s.GetAccessKey(ctx, "id")
	require.NoError(t, err)
	require.Equal(t, "sec", k.Secret)
	cs, err := s.GetConsoleSession(ctx, "sid")
	require.NoError(t, err)
	require.Equal(t, "csrf", cs.CSRFToken)
	require.True(t, cs.Created.Equal(t0))
	require.True(t, cs.LastUsed.Equal(t0.Add(time.Minute)), "the touch was written")
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := jsonfile.Open(dir)
	require.NoError(t, err)
	defer s.Close()
	_, err = jsonfile.Open(dir)
	require.ErrorContains(t, err, "another sluice-server uses this data dir")
}

func TestCorruptFileNamesTheFix(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, jsonfile.FileName), []byte("{not json"), 0o600))
	_, err := jsonfile.Open(dir)
	require.ErrorContains(t, err, "corrupt")
	require.ErrorContains(t, err, "backup")
}

func TestFailedWriteRollsBack(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	ctx := context.Background()
	dir := t.TempDir()
	s, err := jsonfile.Open(dir)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "a"}))
	require.NoError(t, os.Chmod(dir, 0o500))
	defer func() { _ = os.Chmod(dir, 0o700) }()
	require.Error(t, s.CreateProject(ctx, meta.Project{Name: "b"}))
	_, err = s.GetProject(ctx, "b")
	require.ErrorIs(t, err, meta.ErrNotFound, "a write that did not reach disk is not visible")
}

// Signing out twice or touching a session with an older time must not
// rewrite (and fsync) the whole metadata file.
func TestSessionNoOpsDoNotRewrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := jsonfile.Open(dir)
	require.NoError(t, err)
	defer s.Close()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, s.PutConsoleSession(ctx, meta.ConsoleSession{ID: "sid", KeyID: "id", Created: t0, LastUsed: t0}))
	inode := func() uint64 {
		fi, err := os.Stat(filepath.Join(dir, jsonfile.FileName))
		require.NoError(t, err)
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	before := inode()
	require.NoError(t, s.DeleteConsoleSessions(ctx, "missing"))
	require.NoError(t, s.TouchConsoleSession(ctx, "sid", t0))
	require.Equal(t, before, inode(), "no-ops leave the file alone")
	require.NoError(t, s.TouchConsoleSession(ctx, "sid", t0.Add(time.Second)))
	require.NotEqual(t, before, inode(), "a real change replaces the file (write, rename)")
}
