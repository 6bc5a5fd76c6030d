package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/cli"
)

// TestServeQueryKeysAndSIGTERM runs the real command: serve on a free port,
// the keys and query subcommands against it, then SIGTERM for a graceful
// stop.
func TestServeQueryKeysAndSIGTERM(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	var serveLog bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"--listen", addr, "--data-dir", dir, "--log-level", "warn"}, &bytes.Buffer{}, &serveLog)
	}()

	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 20*time.Second, 50*time.Millisecond)
	fi, err := os.Stat(filepath.Join(dir, "admin-key.json"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	client := []string{"--endpoint", addr, "--data-dir", dir}
	var out bytes.Buffer
	require.NoError(t, run(append([]string{"keys", "list"}, client...), &out, &out))
	require.Contains(t, out.String(), "admin (generated)")
	out.Reset()
	require.NoError(t, run(append([]string{"keys", "create", "--project", "web=read"}, client...), &out, &out))
	require.Contains(t, out.String(), "AccessKeySecret:")

	err = run(append([]string{"query", "--project", "web", "--logstore", "access", "--from", "-1h"}, append(client, "status:500")...), &out, &out)
	require.ErrorContains(t, err, "ProjectNotExist")
	err = run([]string{"query", "--logstore", "x"}, &out, &out)
	require.ErrorContains(t, err, "--project")

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, serveLog.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

func TestHelpAndBadFlags(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"help"}, &out, &out))
	require.Contains(t, out.String(), "--base-domain")
	require.ErrorContains(t, run([]string{"frobnicate"}, &out, &out), "unknown command")
	require.ErrorContains(t, run([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--tls-cert", "x"}, &out, &out), "--tls-key")
	require.ErrorContains(t, run([]string{"--log-level", "loud"}, &out, &out), "--log-level")
	require.ErrorContains(t, run([]string{"--durability", "sometimes"}, &out, &out), "use request")
	require.ErrorContains(t, run([]string{"--durability", "async", "--sync-interval", "0s"}, &out, &out), "--sync-interval")
}

// Exit codes and messages as a user meets them: help on stdout and 0;
// a usage error in one line with where the help is, and 2; a runtime error
// (here: nothing listening) 1.
func TestExitCodes(t *testing.T) {
	t.Setenv("SLUICE_ENDPOINT", "http://127.0.0.1:1")
	f := func(args []string, wantCode int, wantStdout, wantStderr string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := cli.Exit("sluice-server", run(args, &stdout, &stderr), &stderr)
		require.Equal(t, wantCode, code, "%q: stderr %s", args, stderr.String())
		if wantStdout == "" {
			require.Empty(t, stdout.String(), "%q", args)
		} else {
			require.Contains(t, stdout.String(), wantStdout, "%q", args)
		}
		require.Contains(t, stderr.String(), wantStderr, "%q", args)
		require.LessOrEqual(t, strings.Count(stderr.String(), "\n"), 2, "%q: a usage error is not followed by the whole help: %s", args, stderr.String())
	}
	for _, help := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}, {"query", "--help"}, {"keys", "--help"}, {"keys", "help"}, {"keys", "list", "--help"}} {
		f(help, 0, "Usage:", "")
	}
	hint := "Run 'sluice-server --help' for usage."
	f([]string{"--bogus"}, 2, "", "sluice-server: flag provided but not defined: -bogus\n"+hint)
	f([]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`)
	f([]string{"--durability", "sometimes"}, 2, "", "use request")
	f([]string{"--listen", "127.0.0.1:0", "--tls-cert", "x"}, 2, "", "--tls-key")
	f([]string{"keys"}, 2, "", "keys needs a subcommand")
	f([]string{"keys", "rotate"}, 2, "", `unknown keys subcommand "rotate"`)
	f([]string{"keys", "delete"}, 2, "", "keys delete needs --id")
	f([]string{"keys", "list", "--bogus"}, 2, "", "flag provided but not defined: -bogus")
	f([]string{"query", "--logstore", "l"}, 2, "", "query needs --project and --logstore")
	f([]string{"keys", "list", "--access-key-id", "a", "--access-key-secret", "b"}, 1, "", "connection refused")
}

// --durability and --sync-interval (or their env vars) reach the store's
// SyncInterval: 0 is request durability.
func TestDurabilityFlags(t *testing.T) {
	var out bytes.Buffer
	cfg, _, err := parseServe(nil, &out)
	require.NoError(t, err)
	require.Zero(t, cfg.Store.SyncInterval, "request durability by default")

	cfg, _, err = parseServe([]string{"--durability", "async"}, &out)
	require.NoError(t, err)
	require.Equal(t, time.Second, cfg.Store.SyncInterval)

	cfg, _, err = parseServe([]string{"--durability=async", "--sync-interval=250ms"}, &out)
	require.NoError(t, err)
	require.Equal(t, 250*time.Millisecond, cfg.Store.SyncInterval)

	t.Setenv("SLUICE_DURABILITY", "async")
	t.Setenv("SLUICE_SYNC_INTERVAL", "2s")
	cfg, _, err = parseServe(nil, &out)
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, cfg.Store.SyncInterval)
	cfg, _, err = parseServe([]string{"--durability", "request"}, &out)
	require.NoError(t, err)
	require.Zero(t, cfg.Store.SyncInterval, "the flag overrides the env")
}

// TestLimitFlags: the limit flags reach the server configuration; the
// metrics token can come from a file (as a mounted Secret).
func TestLimitFlags(t *testing.T) {
	var out bytes.Buffer
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("scrape-token\n"), 0o600))
	cfg, _, err := parseServe([]string{"--metrics-token-file", tokenFile, "--max-connections=100", "--max-connections-per-ip=10",
		"--read-header-timeout=5s", "--body-read-timeout=30s", "--idle-timeout=1m", "--max-inflight-bodies=64MiB",
		"--max-log-future-skew=5m", "--max-write-days=4", "--query-memory=512MB", "--query-threads=1", "--max-queries=4",
		"--max-queries-per-project=1", "--max-query-bytes=4096", "--max-projects=3", "--max-logstores-per-project=5", "--max-index-keys=7"}, &out)
	require.NoError(t, err)
	require.Equal(t, "scrape-token", cfg.MetricsToken)
	require.Equal(t, 100, cfg.MaxConnections)
	require.Equal(t, 10, cfg.MaxConnectionsPerIP)
	require.Equal(t, 5*time.Second, cfg.ReadHeaderTimeout)
	require.Equal(t, 30*time.Second, cfg.BodyReadTimeout)
	require.Equal(t, time.Minute, cfg.IdleTimeout)
	require.Equal(t, int64(64<<20), cfg.MaxInflightBodyBytes)
	require.Equal(t, 5*time.Minute, cfg.MaxFutureSkew)
	require.Equal(t, 4, cfg.MaxWriteDays)
	require.Equal(t, "512MB", cfg.Store.MemoryLimit)
	require.Equal(t, 1, cfg.Store.Threads)
	require.Equal(t, 4, cfg.Store.MaxQueries)
	require.Equal(t, 1, cfg.Store.MaxQueriesPerProject)
	require.Equal(t, 4096, cfg.Store.QueryLimits.MaxBytes)
	require.Equal(t, 3, cfg.Quotas.MaxProjects)
	require.Equal(t, 5, cfg.Quotas.MaxLogstoresPerProject)
	require.Equal(t, 7, cfg.Quotas.MaxIndexKeys)

	t.Setenv("SLUICE_METRICS_TOKEN", "from-env")
	cfg, _, err = parseServe(nil, &out)
	require.NoError(t, err)
	require.Equal(t, "from-env", cfg.MetricsToken)
	_, _, err = parseServe([]string{"--max-inflight-bodies=lots"}, &out)
	require.ErrorContains(t, err, "--max-inflight-bodies")
}

// The shared-storage flags (and env vars) reach the configuration, with
// errors that name the flag.
func TestSharedStorageFlags(t *testing.T) {
	var out bytes.Buffer
	cfg, _, err := parseServe(nil, &out)
	require.NoError(t, err)
	require.Empty(t, cfg.Storage, "the data directory by default")
	require.EqualValues(t, 10<<30, cfg.Objects.CacheBytes)
	require.Equal(t, 200*time.Millisecond, cfg.CommitInterval)

	t.Setenv("SLUICE_S3_SECRET_ACCESS_KEY", "from-env")
	cfg, _, err = parseServe([]string{"--meta", "postgres://u@db/x", "--storage", "s3://logs/prod", "--s3-endpoint", "http://s3:8333",
		"--s3-access-key-id", "id", "--cache-size", "512MiB", "--commit-interval", "300ms", "--node", "n1"}, &out)
	require.NoError(t, err)
	require.Equal(t, "s3://logs/prod", cfg.Storage)
	require.Equal(t, "http://s3:8333", cfg.Objects.Endpoint)
	require.Equal(t, "id", cfg.Objects.AccessKey)
	require.Equal(t, "from-env", cfg.Objects.SecretKey)
	require.EqualValues(t, 512<<20, cfg.Objects.CacheBytes)
	require.Equal(t, 300*time.Millisecond, cfg.CommitInterval)
	require.Equal(t, "n1", cfg.Node)

	require.ErrorContains(t, run([]string{"--cache-size", "lots"}, &out, &out), "--cache-size")
	require.ErrorContains(t, run([]string{"--commit-interval", "0s"}, &out, &out), "--commit-interval")
	require.ErrorContains(t, run([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--storage", "s3://b/p"}, &out, &out), "needs --meta postgres://")
	require.ErrorContains(t, run([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--storage", "/mnt/logs"}, &out, &out), "s3://bucket/prefix")
}
