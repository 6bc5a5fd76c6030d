// Package cli gives the Sluice commands one behaviour at their edges, as
// the go tool and kubectl have it:
//
//   - --help (or -h) prints the command's usage on standard output and
//     exits 0;
//   - a usage error (an unknown flag, a bad flag value, a missing or
//     unknown argument) prints one line naming it and where the help is on
//     standard error and exits 2, rather than the error followed by a page
//     of help it scrolls away under;
//   - an error at run time (a port in use, a server that refuses) prints
//     one line and exits 1.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// UsageError is an error in how the command was called.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with the formatted message.
func Usagef(format string, a ...any) error {
	return &UsageError{Err: fmt.Errorf(format, a...)}
}

// Usage marks err, when not nil, as a usage error.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}

// Parse parses args with fs without printing anything itself. On -h or
// --help it writes fs.Usage (which should print to fs.Output()) to stdout
// and returns flag.ErrHelp; a parse error comes back as a *UsageError.
func Parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		if usage != nil {
			usage()
		} else {
			fs.PrintDefaults()
		}
		fs.SetOutput(out)
		return flag.ErrHelp
	}
	fs.SetOutput(out)
	return Usage(err)
}

// IsHelp reports whether arg asks for help as a subcommand would
// receive it (help, -h, --help, -help).
func IsHelp(arg string) bool {
	switch arg {
	case "help", "-h", "--help", "-help":
		return true
	}
	return false
}

// Exit reports err for the command name on stderr and returns the exit
// code: 0 for nil and flag.ErrHelp, 2 for a *UsageError (with a pointer
// to name --help), 1 otherwise.
func Exit(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if ue := (*UsageError)(nil); errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", name, err, name)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return ExitError
}
