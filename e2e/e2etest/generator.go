package e2etest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/mocklog"
)

// Generator is mocklog writing in the background, in the test process.
type Generator struct {
	g      *mocklog.Generator
	cancel context.CancelFunc
	done   chan error
}

// StartGenerator starts writing as opts say (nginx lines from sequence
// number 1 when LogType and FirstSeq are unset); it is stopped when the
// test ends.
func StartGenerator(t testing.TB, opts mocklog.Options) *Generator {
	t.Helper()
	if opts.LogType == "" {
		opts.LogType = mocklog.LogTypeNginx
	}
	if opts.FirstSeq == 0 {
		opts.FirstSeq = 1
	}
	g, err := mocklog.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	gen := &Generator{g: g, cancel: cancel, done: make(chan error, 1)}
	go func() { gen.done <- g.Run(ctx) }()
	t.Cleanup(func() { gen.Stop() })
	return gen
}

// Stop ends writing and returns the last sequence number written.
func (g *Generator) Stop() uint64 {
	g.cancel()
	err := <-g.done
	g.done <- err // later calls return at once
	return g.g.Stats().NextSeq - 1
}

// Wait waits until the generator stops by itself (Options.TotalCount) and
// returns the last sequence number written.
func (g *Generator) Wait() uint64 {
	err := <-g.done
	g.done <- err
	return g.g.Stats().NextSeq - 1
}
