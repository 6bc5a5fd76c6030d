package cli_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/cli"
)

func TestParseAndExit(t *testing.T) {
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.Int("n", 0, "")
		fs.Usage = func() { fmt.Fprintln(fs.Output(), "Usage: x [-n N]") }
		return fs
	}
	f := func(args []string, wantCode int, wantStdout, wantStderr string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := cli.Exit("x", cli.Parse(newFS(), args, &stdout), &stderr)
		require.Equal(t, wantCode, code, "%q", args)
		require.Equal(t, wantStdout, stdout.String(), "%q", args)
		require.Equal(t, wantStderr, stderr.String(), "%q", args)
	}
	f([]string{"-n", "3"}, 0, "", "")
	f([]string{"--help"}, 0, "Usage: x [-n N]\n", "")
	f([]string{"-h"}, 0, "Usage: x [-n N]\n", "")
	f([]string{"--bogus"}, 2, "", "x: flag provided but not defined: -bogus\nRun 'x --help' for usage.\n")
	f([]string{"-n", "many"}, 2, "", "x: invalid value \"many\" for flag -n: parse error\nRun 'x --help' for usage.\n")

	var stderr bytes.Buffer
	require.Equal(t, 2, cli.Exit("x", fmt.Errorf("serve: %w", cli.Usagef("--mode %q: use a or b", "c")), &stderr))
	require.Equal(t, "x: serve: --mode \"c\": use a or b\nRun 'x --help' for usage.\n", stderr.String())
	stderr.Reset()
	require.Equal(t, 1, cli.Exit("x", errors.New("listen: port in use"), &stderr))
	require.Equal(t, "x: listen: port in use\n", stderr.String())
	require.Nil(t, cli.Usage(nil))
}
