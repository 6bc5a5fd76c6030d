package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
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
