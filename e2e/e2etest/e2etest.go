// Package e2etest is what the end-to-end test packages share: building the
// real binaries once per package and checking for leaked goroutines after
// the tests (Main, so every TestMain is one line); running them as child
// processes with their logs in files (Start, StartAgent); mocklog writing
// in the background (StartGenerator); and reading the agent's file output,
// lines torn by SIGKILL included (ScanOutput, TrackOutput).
package e2etest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// Module is the import path the binaries are built from.
const Module = "github.com/sluicelog/sluice"

// Main builds the commands named by bins' keys (directories under cmd/,
// e.g. "sluice-agent") in one `go build` into a temporary directory, stores
// each binary's path in its *string, runs the tests and, when they pass,
// fails on goroutines still running (ignore lists what a package may leave,
// such as idle HTTP keep-alive connections). It returns the exit code for
// os.Exit.
func Main(m *testing.M, bins map[string]*string, ignore ...goleak.Option) int {
	dir, err := os.MkdirTemp("", "sluice-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for name, p := range bins {
		args = append(args, Module+"/cmd/"+name)
		*p = filepath.Join(dir, name)
	}
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the binaries under test:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(ignore...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}
