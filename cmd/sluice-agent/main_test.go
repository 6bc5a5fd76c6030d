package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Exit codes and messages as a user meets them: help on stdout and 0; a
// usage error in one line with where the help is, and 2; a runtime error
// (a port in use, another program on the status port) named, and 1.
func TestExitCodes(t *testing.T) {
	noEnv := func(string) string { return "" }
	f := func(args []string, wantCode int, wantStdout, wantStderr string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(args, noEnv, &stdout, &stderr)
		require.Equal(t, wantCode, code, "%q: stderr %s", args, stderr.String())
		if wantStdout == "" {
			require.Empty(t, stdout.String(), "%q", args)
		} else {
			require.Contains(t, stdout.String(), wantStdout, "%q", args)
		}
		require.Contains(t, stderr.String(), wantStderr, "%q", args)
		require.LessOrEqual(t, strings.Count(stderr.String(), "\n"), 2, "%q: a usage error is not followed by the whole help: %s", args, stderr.String())
	}
	for _, help := range [][]string{{"--help"}, {"-h"}, {"help"}, {"run", "--help"}, {"status", "--help"}} {
		f(help, 0, "Usage:", "")
	}
	hint := "Run 'sluice-agent --help' for usage."
	f([]string{"--bogus"}, 2, "", "sluice-agent: flag provided but not defined: -bogus\n"+hint)
	f([]string{"frobnicate"}, 2, "", `sluice-agent: unknown command "frobnicate"`)
	f([]string{"--config-dir", t.TempDir(), "--log-level", "loud"}, 2, "", `--log-level "loud"`)
	f([]string{"--config-dir", t.TempDir(), "stray"}, 2, "", `unexpected arguments ["stray"]`)
	f([]string{"status", "--bogus"}, 2, "", "flag provided but not defined: -bogus\n"+hint)

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 1, run([]string{"--config-dir", t.TempDir(), "--output", "null", "--http-listen", taken.Addr().String()}, noEnv, &stdout, &stderr))
	require.Contains(t, stderr.String(), taken.Addr().String()+" is in use")
	require.Contains(t, stderr.String(), "--http-listen ADDR")

	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	f([]string{"status", "--addr", strings.TrimPrefix(web.URL, "http://")}, 1, "", "answers, but not as sluice-agent (HTTP 404 for /status)")
}
