package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
