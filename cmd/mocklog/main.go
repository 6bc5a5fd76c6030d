// Command mocklog writes realistic log lines, each with a sequence number,
// to a file (optionally rotating it) or to stdout/stderr, at a given rate.
// It takes mock_log's flags; see mocklog --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sluicelog/sluice/internal/cli"
	"github.com/sluicelog/sluice/internal/version"
	"github.com/sluicelog/sluice/mocklog"
)

type byteSize int64

func (b *byteSize) String() string { return fmt.Sprint(int64(*b)) }

func (b *byteSize) Set(s string) error {
	n, err := mocklog.ParseByteSize(s)
	*b = byteSize(n)
	return err
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if version.IsFlag(args) {
		fmt.Fprintln(stdout, version.String("mocklog"))
		return 0
	}
	fs := flag.NewFlagSet("mocklog", flag.ContinueOnError)
	var (
		logType     = fs.String("log-type", mocklog.LogTypeNginx, "event format: "+strings.Join(mocklog.LogTypes(), " | ")+"\n(nginx: combined + $request_time, seq in the URI as ?seq=N; json: \"seq\" key;\napsara: tab-separated with seq:N; java-multiline: seq=N on each event's first line,\nERROR/WARN events followed by stack trace lines)")
		path        = fs.String("path", "", "append events to this file (created if missing)")
		toStdout    = fs.Bool("stdout", false, "write events to standard output")
		toStderr    = fs.Bool("stderr", false, "write events to standard error (the summary line then goes there too)")
		total       = fs.Uint64("total-count", 0, "stop after this many events (0 = no limit)")
		rate        = fs.Float64("logs-per-sec", 0, "events per second (0 = as fast as possible); fractions allowed, e.g. 0.5")
		rotateMode  = fs.String("rotate-mode", mocklog.RotateRename, "how --path is rotated: rename (path -> path.1 -> path.2 ..., new path) | copytruncate (copy path to path.1, truncate path)")
		rotateKeep  = fs.Int("rotate-keep", 5, "rotated files kept (path.1 ... path.N); older ones are deleted")
		seed        = fs.Uint64("seed", 1, "random seed: same seed, same content (timestamps aside)")
		firstSeq    = fs.Uint64("first-seq", 1, "sequence number of the first event")
		container   = fs.String("container", "", "wrap every line as a container runtime stores it: cri (\"<time> stdout F <line>\", kubelet's /var/log/pods format) | docker-json ({\"log\":...,\"stream\":...,\"time\":...}); empty = plain lines")
		stream      = fs.String("stream", "", "stream named in --container records: stdout | stderr (default: stderr with --stderr, else stdout)")
		partial     byteSize
		rotateBytes byteSize
		size        byteSize
	)
	fs.Var(&rotateBytes, "rotate-bytes", "rotate --path once it reaches this `size`, e.g. 100M (0 = never); rotation happens between events")
	fs.Var(&partial, "partial-bytes", "with --container, split lines longer than this `size` into partial records (default 16K, as kubelet and Docker)")
	fs.Var(&size, "size", "stop at the first event boundary at or after this many bytes (a `size`), e.g. 1G for a bench file (0 = no limit)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `mocklog writes realistic log events, each with an increasing sequence number
(mocklog.ParseSeq finds it), so a collector's output can be checked for loss.

Usage: mocklog --log-type=nginx (--path=FILE | --stdout | --stderr) [flags]
       mocklog --log-type=nginx --path=FILE --stderr=true [flags]   (both, as mock_log)

Stops at --total-count events, at --size bytes, or on SIGINT/SIGTERM (every
event started is written whole), then prints a summary line to stderr.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		return cli.Exit("mocklog", err, stderr)
	}
	if fs.NArg() > 0 {
		return cli.Exit("mocklog", cli.Usagef("unexpected argument %q: all options are flags", fs.Arg(0)), stderr)
	}
	opts := mocklog.Options{
		LogType: *logType, Path: *path, TotalCount: *total, LogsPerSec: *rate,
		RotateBytes: int64(rotateBytes), RotateMode: *rotateMode, RotateKeep: *rotateKeep,
		Size: int64(size), Seed: *seed, FirstSeq: *firstSeq,
		Container: *container, Stream: *stream, PartialBytes: int(partial),
	}
	if opts.Stream == "" && *toStderr {
		opts.Stream = "stderr"
	}
	if *toStdout && *toStderr || *path == "" && !*toStdout && !*toStderr {
		return cli.Exit("mocklog", cli.Usagef("choose the output: --path=FILE, --stdout or --stderr, or --path with one of the others (events go to both, as mock_log)"), stderr)
	}
	switch {
	case *toStdout:
		opts.Writer = stdout
	case *toStderr:
		opts.Writer = stderr
	}
	g, err := mocklog.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "mocklog: %v\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = g.Run(ctx)
	if st := g.Stats(); err == nil || st.Events > 0 {
		fmt.Fprintf(stderr, "mocklog: %s\n", st)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "mocklog: %v\n", err)
		return 1
	}
	return 0
}
