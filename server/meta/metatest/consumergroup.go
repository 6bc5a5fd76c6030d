package metatest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/meta"
)

func testConsumerGroups(t *testing.T, s meta.Store) {
	ctx := context.Background()
	g := meta.ConsumerGroup{Project: "p", Logstore: "l", Name: "cg", Timeout: 60, CreateTime: t0, LastModifyTime: t0}
	requireNotFound(t, s.CreateConsumerGroup(ctx, g), meta.KindProject)
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p"}))
	requireNotFound(t, s.CreateConsumerGroup(ctx, g), meta.KindLogstore)
	_, err := s.ListConsumerGroups(ctx, "p", "l")
	requireNotFound(t, err, meta.KindLogstore)
	require.NoError(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l", TTL: 1, ShardCount: 2}))
	require.NoError(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "other", TTL: 1, ShardCount: 2}))

	gs, err := s.ListConsumerGroups(ctx, "p", "l")
	require.NoError(t, err)
	require.Empty(t, gs)
	require.NoError(t, s.CreateConsumerGroup(ctx, g))
	requireExists(t, s.CreateConsumerGroup(ctx, g), meta.KindConsumerGroup)
	g2 := g
	g2.Name, g2.InOrder = "a-first", true
	require.NoError(t, s.CreateConsumerGroup(ctx, g2))
	g3 := g
	g3.Logstore = "other"
	require.NoError(t, s.CreateConsumerGroup(ctx, g3), "the same name in another logstore")

	got, err := s.GetConsumerGroup(ctx, "p", "l", "cg")
	require.NoError(t, err)
	require.Equal(t, 60, got.Timeout)
	require.True(t, got.CreateTime.Equal(t0))
	_, err = s.GetConsumerGroup(ctx, "p", "l", "nope")
	requireNotFound(t, err, meta.KindConsumerGroup)
	gs, err = s.ListConsumerGroups(ctx, "p", "l")
	require.NoError(t, err)
	require.Equal(t, []string{"a-first", "cg"}, []string{gs[0].Name, gs[1].Name})
	require.True(t, gs[0].InOrder)

	g.Timeout = 30
	require.NoError(t, s.UpdateConsumerGroup(ctx, g))
	got, err = s.GetConsumerGroup(ctx, "p", "l", "cg")
	require.NoError(t, err)
	require.Equal(t, 30, got.Timeout)
	requireNotFound(t, s.UpdateConsumerGroup(ctx, meta.ConsumerGroup{Project: "p", Logstore: "l", Name: "nope"}), meta.KindConsumerGroup)

	// Checkpoints: one per shard, replaced, listed by shard.
	cps, err := s.Checkpoints(ctx, "p", "l", "cg")
	require.NoError(t, err)
	require.Empty(t, cps)
	require.NoError(t, s.PutCheckpoint(ctx, "p", "l", "cg", meta.Checkpoint{Shard: 1, Cursor: "MTA=", Consumer: "c1", UpdateTime: t0}))
	require.NoError(t, s.PutCheckpoint(ctx, "p", "l", "cg", meta.Checkpoint{Shard: 0, Cursor: "NQ==", Consumer: "c2", UpdateTime: t0}))
	require.NoError(t, s.PutCheckpoint(ctx, "p", "l", "cg", meta.Checkpoint{Shard: 1, Cursor: "MjA=", Consumer: "c1", UpdateTime: t0}))
	cps, err = s.Checkpoints(ctx, "p", "l", "cg")
	require.NoError(t, err)
	require.Len(t, cps, 2)
	require.Equal(t, 0, cps[0].Shard)
	require.Equal(t, "NQ==", cps[0].Cursor)
	require.Equal(t, "c2", cps[0].Consumer)
	require.Equal(t, "MjA=", cps[1].Cursor)
	require.True(t, cps[1].UpdateTime.Equal(t0))
	requireNotFound(t, s.PutCheckpoint(ctx, "p", "l", "nope", meta.Checkpoint{}), meta.KindConsumerGroup)
	_, err = s.Checkpoints(ctx, "p", "l", "nope")
	requireNotFound(t, err, meta.KindConsumerGroup)
	cps, err = s.Checkpoints(ctx, "p", "other", "cg")
	require.NoError(t, err)
	require.Empty(t, cps, "checkpoints belong to one logstore's group")

	// Deleting the group takes its checkpoints; a new group starts empty.
	require.NoError(t, s.DeleteConsumerGroup(ctx, "p", "l", "cg"))
	requireNotFound(t, s.DeleteConsumerGroup(ctx, "p", "l", "cg"), meta.KindConsumerGroup)
	require.NoError(t, s.CreateConsumerGroup(ctx, g))
	cps, err = s.Checkpoints(ctx, "p", "l", "cg")
	require.NoError(t, err)
	require.Empty(t, cps)

	// Deleting the logstore takes its groups.
	require.NoError(t, s.DeleteLogstore(ctx, "p", "l"))
	require.NoError(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l", TTL: 1, ShardCount: 2}))
	gs, err = s.ListConsumerGroups(ctx, "p", "l")
	require.NoError(t, err)
	require.Empty(t, gs)
	require.NoError(t, s.DeleteProject(ctx, "p"))
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p"}))
	require.NoError(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "other", TTL: 1, ShardCount: 2}))
	gs, err = s.ListConsumerGroups(ctx, "p", "other")
	require.NoError(t, err)
	require.Empty(t, gs)
}

func testDocuments(t *testing.T, s meta.Store) {
	ctx := context.Background()
	raw := json.RawMessage(`{"savedsearchName": "errors",  "searchQuery": "level: error", "logstore": "l", "x": [1, 2]}`)
	d := meta.Document{Project: "p", Kind: meta.KindSavedSearch, Name: "errors", Raw: raw, CreateTime: t0, LastModifyTime: t0}
	requireNotFound(t, s.CreateDocument(ctx, d), meta.KindProject)
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p"}))
	require.NoError(t, s.CreateDocument(ctx, d))
	requireExists(t, s.CreateDocument(ctx, d), meta.KindSavedSearch)
	dash := meta.Document{Project: "p", Kind: meta.KindDashboard, Name: "errors", Raw: json.RawMessage(`{"dashboardName":"errors","charts":[]}`), CreateTime: t0, LastModifyTime: t0}
	require.NoError(t, s.CreateDocument(ctx, dash), "kinds have separate names")
	for _, n := range []string{"b", "a"} {
		require.NoError(t, s.CreateDocument(ctx, meta.Document{Project: "p", Kind: meta.KindSavedSearch, Name: n, Raw: json.RawMessage(`{}`), CreateTime: t0, LastModifyTime: t0}))
	}

	got, err := s.GetDocument(ctx, "p", meta.KindSavedSearch, "errors")
	require.NoError(t, err)
	require.JSONEq(t, string(raw), string(got.Raw))
	require.Equal(t, meta.KindSavedSearch, got.Kind)
	require.True(t, got.CreateTime.Equal(t0))
	_, err = s.GetDocument(ctx, "p", meta.KindDashboard, "nope")
	requireNotFound(t, err, meta.KindDashboard)
	_, err = s.GetDocument(ctx, "nope", meta.KindDashboard, "errors")
	requireNotFound(t, err, meta.KindProject)

	docs, total, err := s.ListDocuments(ctx, "p", meta.KindSavedSearch, meta.Page{})
	require.NoError(t, err)
	require.Equal(t, 3, total)
	require.Equal(t, []string{"a", "b", "errors"}, []string{docs[0].Name, docs[1].Name, docs[2].Name})
	docs, total, err = s.ListDocuments(ctx, "p", meta.KindSavedSearch, meta.Page{Offset: 1, Size: 1})
	require.NoError(t, err)
	require.Equal(t, 3, total)
	require.Len(t, docs, 1)
	require.Equal(t, "b", docs[0].Name)
	docs, total, err = s.ListDocuments(ctx, "p", meta.KindDashboard, meta.Page{})
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.JSONEq(t, `{"dashboardName":"errors","charts":[]}`, string(docs[0].Raw))

	d.Raw = json.RawMessage(`{"savedsearchName":"errors","searchQuery":"level: fatal"}`)
	require.NoError(t, s.UpdateDocument(ctx, d))
	got, err = s.GetDocument(ctx, "p", meta.KindSavedSearch, "errors")
	require.NoError(t, err)
	require.JSONEq(t, string(d.Raw), string(got.Raw))
	requireNotFound(t, s.UpdateDocument(ctx, meta.Document{Project: "p", Kind: meta.KindDashboard, Name: "nope", Raw: json.RawMessage(`{}`)}), meta.KindDashboard)

	require.NoError(t, s.DeleteDocument(ctx, "p", meta.KindSavedSearch, "errors"))
	requireNotFound(t, s.DeleteDocument(ctx, "p", meta.KindSavedSearch, "errors"), meta.KindSavedSearch)
	_, err = s.GetDocument(ctx, "p", meta.KindDashboard, "errors")
	require.NoError(t, err, "the dashboard of the same name stays")

	require.NoError(t, s.DeleteProject(ctx, "p"))
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p"}))
	_, total, err = s.ListDocuments(ctx, "p", meta.KindDashboard, meta.Page{})
	require.NoError(t, err)
	require.Zero(t, total, "a project's documents go with it")
}
