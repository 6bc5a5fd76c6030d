package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicelog/sluice/mocklog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunStdout(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"--log-type=json", "--stdout", "--total-count=5", "--first-seq=100"}, &out, &errOut))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 5)
	for i, l := range lines {
		seq, ok := mocklog.ParseSeq([]byte(l))
		require.True(t, ok)
		require.EqualValues(t, 100+i, seq)
	}
	require.Regexp(t, `^mocklog: 5 events, 5 lines, \d+ bytes`, errOut.String())
}

func TestRunContainerStderr(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"--stdout", "--stream=stderr", "--container=cri", "--partial-bytes=64", "--total-count=3"}, &out, &errOut), errOut.String())
	require.Regexp(t, `^\S+Z stderr P .{64}\n`, out.String())
	require.Equal(t, 3, strings.Count(out.String(), " stderr F "))
}

func TestRunFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	var errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"--path", path, "--size=64K", "--rotate-bytes=16K", "--rotate-keep=10", "--rotate-mode=copytruncate"}, nil, &errOut), errOut.String())
	matches, err := filepath.Glob(path + "*")
	require.NoError(t, err)
	require.Len(t, matches, 4, "64 KiB rotated every 16 KiB: access.log plus 3 rotated files")
	require.Contains(t, errOut.String(), "3 rotations")
}

// The Logtail guides' generator arguments, as printed: the file and stderr
// both get every event.
func TestRunGuideArgs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	var errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"--log-type=nginx", "--stdout=false", "--stderr=true", "--path=" + path, "--total-count=5", "--logs-per-sec=100"}, nil, &errOut), errOut.String())
	file, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 5, strings.Count(string(file), "\n"))
	require.Equal(t, string(file), errOut.String()[:len(file)], "the same events on stderr, then the summary")
}

func TestRunUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--total-count=1"}, "choose the output"},
		{[]string{"--stdout", "--stderr"}, "choose the output"},
		{[]string{"--stdout", "--log-type=xml"}, `log type "xml" is unknown: use one of nginx, json, apsara, java-multiline`},
		{[]string{"--stdout", "--size=big"}, `size "big" is not a byte count`},
		{[]string{"--stdout", "extra"}, `unexpected argument "extra"`},
	} {
		var errOut bytes.Buffer
		require.Equal(t, 2, run(tc.args, nil, &errOut), tc.args)
		require.Contains(t, errOut.String(), tc.want, tc.args)
	}
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run([]string{"--bogus"}, &out, &errOut))
	require.Equal(t, "mocklog: flag provided but not defined: -bogus\nRun 'mocklog --help' for usage.\n", errOut.String())
	errOut.Reset()
	require.Equal(t, 0, run([]string{"--help"}, &out, &errOut))
	require.Empty(t, errOut.String(), "help goes to stdout")
	for _, flag := range []string{"log-type", "path", "stdout", "stderr", "total-count", "logs-per-sec", "rotate-bytes", "rotate-mode", "rotate-keep", "size", "seed", "first-seq", "container", "stream", "partial-bytes"} {
		require.Regexp(t, `(?m)^  -`+flag+`( |$)`, out.String(), "--help documents --%s", flag)
	}
}

// TestRunStopsOnSIGTERM: the signal ends the run cleanly, every event begun
// is in the file and the summary is printed.
func TestRunStopsOnSIGTERM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	var errOut bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run([]string{"--path", path, "--logs-per-sec=1000", "--log-type=java-multiline"}, nil, &errOut)
	}()
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case code := <-done:
		require.Equal(t, 0, code)
	case <-time.After(10 * time.Second):
		t.Fatal("mocklog did not stop on SIGTERM")
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var n uint64
	for _, l := range bytes.Split(data, []byte("\n")) {
		if seq, ok := mocklog.ParseSeq(l); ok {
			n++
			require.Equal(t, n, seq)
		}
	}
	require.Greater(t, n, uint64(50))
	require.Contains(t, errOut.String(), "mocklog: ")
	require.Contains(t, errOut.String(), " events, ")
}
