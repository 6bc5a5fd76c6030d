package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/cli"
)

func TestParseFlags(t *testing.T) {
	f := func(args string, wantErr string) {
		t.Run(args, func(t *testing.T) {
			t.Setenv("SLUICE_SERVER_ENDPOINT", "")
			t.Setenv("SLUICE_ACCESS_KEY_ID", "")
			t.Setenv("SLUICE_ACCESS_KEY_SECRET", "")
			t.Setenv("SLUICE_CLUSTER_ID", "")
			_, err := parseFlags(strings.Fields(args), io.Discard)
			if wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, wantErr)
		})
	}
	f("--server-endpoint http://s:8080 --cluster-id c --credentials-secret ns/creds", "")
	f("--server-endpoint http://s:8080 --cluster-id c --access-key-id a --access-key-secret b", "")
	f("--cluster-id c --credentials-secret ns/creds", "--server-endpoint is required")
	f("--server-endpoint s --credentials-secret ns/creds", "--cluster-id is required")
	f("--server-endpoint s --cluster-id c", "credentials are required")
	f("--server-endpoint s --cluster-id c --credentials-secret creds", "want namespace/name")
	f("--server-endpoint s --cluster-id c --credentials-secret ns/x --access-key-id a --access-key-secret b", "exclusive")

	_, err := parseFlags([]string{"--help"}, io.Discard)
	require.True(t, errors.Is(err, flag.ErrHelp), "--help exits 0 in main")
}

// Exit codes and messages: help on stdout and 0, usage errors in one line
// with where the help is, and 2.
func TestExitCodes(t *testing.T) {
	t.Setenv("SLUICE_SERVER_ENDPOINT", "")
	t.Setenv("SLUICE_CLUSTER_ID", "")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, cli.Exit("sluice-controller", run([]string{"--help"}, &stdout, &stderr), &stderr))
	require.Contains(t, stdout.String(), "Usage: sluice-controller")
	require.Empty(t, stderr.String())
	for args, want := range map[string]string{
		"--bogus":                            "sluice-controller: flag provided but not defined: -bogus\n",
		"--cluster-id c":                     "sluice-controller: --server-endpoint is required",
		"--server-endpoint s --cluster-id c": "sluice-controller: credentials are required",
	} {
		stdout.Reset()
		stderr.Reset()
		require.Equal(t, 2, cli.Exit("sluice-controller", run(strings.Fields(args), &stdout, &stderr), &stderr), args)
		require.Contains(t, stderr.String(), want, args)
		require.Contains(t, stderr.String(), "Run 'sluice-controller --help' for usage.", args)
		require.Empty(t, stdout.String(), args)
	}
}
