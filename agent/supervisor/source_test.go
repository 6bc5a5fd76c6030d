package supervisor

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func fileOf(path, content string) ConfigFile {
	return ConfigFile{Path: path, Data: []byte(content), Hash: sha256.Sum256([]byte(content))}
}

// Configs from the directory and from the config server coexist: applying
// one source never stops the other's pipelines, and nothing starts after
// StopAll.
func TestApplySourceKeepsOtherSources(t *testing.T) {
	ctx := context.Background()
	r := &recorder{}
	a, err := New(Options{Factory: r})
	require.NoError(t, err)

	a.Apply(ctx, []ConfigFile{fileOf("/etc/sluice/a.json", `{"configName":"a","version":"1"}`)})
	a.ApplySource(ctx, "configserver", []ConfigFile{fileOf("configserver:/b.json", `{"configName":"b","version":"1"}`)})
	require.Equal(t, []string{"start a@1", "start b@1"}, r.take())

	// The directory rescans: b stays.
	a.Apply(ctx, []ConfigFile{fileOf("/etc/sluice/a.json", `{"configName":"a","version":"1"}`)})
	require.Empty(t, r.take())

	// The server removes b and changes nothing else.
	a.ApplySource(ctx, "configserver", nil)
	require.Equal(t, []string{"stop b@1"}, r.take())
	require.Equal(t, StateRunning, statusOf(a, "a").State)

	// A failed server config is reported under its path.
	a.ApplySource(ctx, "configserver", []ConfigFile{fileOf("configserver:/c.json", `{"configName":"c","broken":"bad regex"}`)})
	st := statusOf(a, "c")
	require.Equal(t, StateFailed, st.State)
	require.Equal(t, "configserver:/c.json", st.Path)
	require.Contains(t, st.Message, "bad regex")

	require.NoError(t, a.StopAll(ctx))
	require.Equal(t, []string{"stop a@1"}, r.take())
	a.ApplySource(ctx, "configserver", []ConfigFile{fileOf("configserver:/d.json", `{"configName":"d","version":"1"}`)})
	require.Empty(t, r.take(), "nothing starts once the agent stopped")
}

// A refusal with a content hash is reported once, not on every pass.
func TestRefusalWithHashIsNotRetried(t *testing.T) {
	ctx := context.Background()
	r := &recorder{}
	a, err := New(Options{Factory: r})
	require.NoError(t, err)
	refused := fileOf("configserver:/x.json", `{"configName":"x"}`)
	refused.Err = errors.New("logPath /etc is outside the allowed roots")
	a.ApplySource(ctx, "configserver", []ConfigFile{refused})
	first := statusOf(a, "x")
	require.Equal(t, StateFailed, first.State)
	a.Apply(ctx, nil) // a directory pass
	require.Equal(t, first.Since, statusOf(a, "x").Since, "the refusal was not applied again")
	require.NoError(t, a.StopAll(ctx))
}
