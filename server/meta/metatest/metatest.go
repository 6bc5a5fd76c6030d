// Package metatest is the conformance suite every meta.Store backend must
// pass: call Run from the backend's tests with a constructor for an empty
// store.
package metatest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/meta"
)

// Run runs the suite; newStore returns an empty store (closed by the suite).
func Run(t *testing.T, newStore func(t *testing.T) meta.Store) {
	t.Helper()
	tests := map[string]func(t *testing.T, s meta.Store){
		"Projects":             testProjects,
		"Logstores":            testLogstores,
		"Indexes":              testIndexes,
		"MachineGroupsConfigs": testGroupsConfigs,
		"AccessKeys":           testAccessKeys,
		"ConsoleSessions":      testConsoleSessions,
		"CascadeDelete":        testCascade,
		"Concurrent":           testConcurrent,
		"ConsumerGroups":       testConsumerGroups,
		"Documents":            testDocuments,
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { require.NoError(t, s.Close()) })
			f(t, s)
		})
	}
}

func requireNotFound(t *testing.T, err error, kind meta.Kind) {
	t.Helper()
	require.ErrorIs(t, err, meta.ErrNotFound)
	var nf *meta.NotFoundError
	require.True(t, errors.As(err, &nf), "want *meta.NotFoundError, got %T", err)
	require.Equal(t, kind, nf.Kind)
}

func requireExists(t *testing.T, err error, kind meta.Kind) {
	t.Helper()
	require.ErrorIs(t, err, meta.ErrExists)
	var ee *meta.ExistsError
	require.True(t, errors.As(err, &ee))
	require.Equal(t, kind, ee.Kind)
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testProjects(t *testing.T, s meta.Store) {
	ctx := context.Background()
	for _, n := range []string{"b", "a", "c"} {
		require.NoError(t, s.CreateProject(ctx, meta.Project{Name: n, Description: "d-" + n, CreateTime: t0}))
	}
	requireExists(t, s.CreateProject(ctx, meta.Project{Name: "a"}), meta.KindProject)

	p, err := s.GetProject(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, "d-a", p.Description)
	require.True(t, p.CreateTime.Equal(t0))

	_, err = s.GetProject(ctx, "zz")
	requireNotFound(t, err, meta.KindProject)

	p.Description = "new"
	require.NoError(t, s.UpdateProject(ctx, p))
	p, err = s.GetProject(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, "new", p.Description)
	requireNotFound(t, s.UpdateProject(ctx, meta.Project{Name: "zz"}), meta.KindProject)

	ps, total, err := s.ListProjects(ctx, meta.Page{})
	require.NoError(t, err)
	require.Equal(t, 3, total)
	require.Equal(t, []string{"a", "b", "c"}, projectNames(ps))
	ps, total, err = s.ListProjects(ctx, meta.Page{Offset: 1, Size: 1})
	require.NoError(t, err)
	require.Equal(t, 3, total)
	require.Equal(t, []string{"b"}, projectNames(ps))

	require.NoError(t, s.DeleteProject(ctx, "b"))
	requireNotFound(t, s.DeleteProject(ctx, "b"), meta.KindProject)
	ps, _, err = s.ListProjects(ctx, meta.Page{})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "c"}, projectNames(ps))
}

func projectNames(ps []meta.Project) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func testLogstores(t *testing.T, s meta.Store) {
	ctx := context.Background()
	requireNotFound(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l"}), meta.KindProject)
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p"}))
	require.NoError(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l2", TTL: 7, ShardCount: 2}))
	require.NoError(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l1", TTL: 30, ShardCount: 1, AppendMeta: true}))
	requireExists(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l1"}), meta.KindLogstore)

	ls, err := s.GetLogstore(ctx, "p", "l1")
	require.NoError(t, err)
	require.Equal(t, 30, ls.TTL)
	require.True(t, ls.AppendMeta)
	_, err = s.GetLogstore(ctx, "p", "nope")
	requireNotFound(t, err, meta.KindLogstore)
	_, err = s.GetLogstore(ctx, "nope", "l1")
	requireNotFound(t, err, meta.KindProject)

	ls.TTL = 90
	require.NoError(t, s.UpdateLogstore(ctx, ls))
	ls, err = s.GetLogstore(ctx, "p", "l1")
	require.NoError(t, err)
	require.Equal(t, 90, ls.TTL)

	names, total, err := s.ListLogstores(ctx, "p", meta.Page{})
	require.NoError(t, err)
	require.Equal(t, 2, total)
	require.Equal(t, []string{"l1", "l2"}, names)

	require.NoError(t, s.DeleteLogstore(ctx, "p", "l2"))
	requireNotFound(t, s.DeleteLogstore(ctx, "p", "l2"), meta.KindLogstore)
	names, total, err = s.ListLogstores(ctx, "p", meta.Page{Size: 10})
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.Equal(t, []string{"l1"}, names)
}

func testIndexes(t *testing.T, s meta.Store) {
	ctx := context.Background()
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p"}))
	require.NoError(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l"}))
	_, err := s.GetIndex(ctx, "p", "l")
	requireNotFound(t, err, meta.KindIndex)
	requireNotFound(t, s.PutIndex(ctx, "p", "nope", index.Config{}), meta.KindLogstore)

	cfg := index.Config{
		Line: &index.LineConfig{Token: index.DefaultTokens()},
		Keys: map[string]index.KeyConfig{"status": {Type: index.TypeLong, DocValue: true}},
	}
	require.NoError(t, s.PutIndex(ctx, "p", "l", cfg))
	cfg.Keys["mutated"] = index.KeyConfig{Type: index.TypeText} // the store must not alias the caller's value
	got, err := s.GetIndex(ctx, "p", "l")
	require.NoError(t, err)
	require.Len(t, got.Keys, 1)
	require.Equal(t, index.TypeLong, got.Keys["status"].Type)
	require.True(t, got.Keys["status"].DocValue)
	require.Equal(t, index.DefaultTokens(), got.Line.Token)

	require.NoError(t, s.DeleteIndex(ctx, "p", "l"))
	requireNotFound(t, s.DeleteIndex(ctx, "p", "l"), meta.KindIndex)

	// Deleting the logstore drops its index.
	require.NoError(t, s.PutIndex(ctx, "p", "l", cfg))
	require.NoError(t, s.DeleteLogstore(ctx, "p", "l"))
	require.NoError(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l"}))
	_, err = s.GetIndex(ctx, "p", "l")
	requireNotFound(t, err, meta.KindIndex)
}

func testGroupsConfigs(t *testing.T, s meta.Store) {
	ctx := context.Background()
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p"}))
	g := meta.MachineGroup{Project: "p", Name: "g1", MachineIdentifyType: "ip", MachineList: []string{"10.0.0.1"},
		Attribute: meta.GroupAttribute{GroupTopic: "t"}}
	require.NoError(t, s.CreateMachineGroup(ctx, g))
	require.NoError(t, s.CreateMachineGroup(ctx, meta.MachineGroup{Project: "p", Name: "g2", MachineIdentifyType: "userdefined"}))
	requireExists(t, s.CreateMachineGroup(ctx, g), meta.KindMachineGroup)
	g.MachineList[0] = "mutated"
	got, err := s.GetMachineGroup(ctx, "p", "g1")
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.1"}, got.MachineList)
	require.Equal(t, "t", got.Attribute.GroupTopic)

	got.MachineList = append(got.MachineList, "10.0.0.2")
	require.NoError(t, s.UpdateMachineGroup(ctx, got))
	got, err = s.GetMachineGroup(ctx, "p", "g1")
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.1", "10.0.0.2"}, got.MachineList)

	raw := json.RawMessage(`{"configName":"c1","inputType":"file","inputDetail":{"logPath":"/var/log","filePattern":"*.log","unknownField":1}}`)
	require.NoError(t, s.CreateConfig(ctx, meta.Config{Project: "p", Name: "c1", Raw: raw}))
	require.NoError(t, s.CreateConfig(ctx, meta.Config{Project: "p", Name: "c2", Raw: json.RawMessage(`{}`)}))
	requireExists(t, s.CreateConfig(ctx, meta.Config{Project: "p", Name: "c1", Raw: raw}), meta.KindConfig)
	c, err := s.GetConfig(ctx, "p", "c1")
	require.NoError(t, err)
	require.JSONEq(t, string(raw), string(c.Raw))
	_, err = s.GetConfig(ctx, "p", "zz")
	requireNotFound(t, err, meta.KindConfig)

	names, total, err := s.ListConfigs(ctx, "p", meta.Page{})
	require.NoError(t, err)
	require.Equal(t, 2, total)
	require.Equal(t, []string{"c1", "c2"}, names)
	names, total, err = s.ListMachineGroups(ctx, "p", meta.Page{})
	require.NoError(t, err)
	require.Equal(t, 2, total)
	require.Equal(t, []string{"g1", "g2"}, names)

	require.NoError(t, s.ApplyConfig(ctx, "p", "g1", "c2"))
	require.NoError(t, s.ApplyConfig(ctx, "p", "g1", "c1"))
	require.NoError(t, s.ApplyConfig(ctx, "p", "g1", "c1")) // idempotent
	require.NoError(t, s.ApplyConfig(ctx, "p", "g2", "c1"))
	requireNotFound(t, s.ApplyConfig(ctx, "p", "g1", "zz"), meta.KindConfig)
	requireNotFound(t, s.ApplyConfig(ctx, "p", "zz", "c1"), meta.KindMachineGroup)

	applied, err := s.AppliedConfigs(ctx, "p", "g1")
	require.NoError(t, err)
	require.Equal(t, []string{"c1", "c2"}, applied)
	groups, err := s.ConfigGroups(ctx, "p", "c1")
	require.NoError(t, err)
	require.Equal(t, []string{"g1", "g2"}, groups)

	require.NoError(t, s.RemoveConfig(ctx, "p", "g1", "c2"))
	require.NoError(t, s.RemoveConfig(ctx, "p", "g1", "c2"))
	applied, err = s.AppliedConfigs(ctx, "p", "g1")
	require.NoError(t, err)
	require.Equal(t, []string{"c1"}, applied)

	// Deleting a config or group removes its applications.
	require.NoError(t, s.DeleteConfig(ctx, "p", "c1"))
	applied, err = s.AppliedConfigs(ctx, "p", "g1")
	require.NoError(t, err)
	require.Empty(t, applied)
	require.NoError(t, s.ApplyConfig(ctx, "p", "g2", "c2"))
	require.NoError(t, s.DeleteMachineGroup(ctx, "p", "g2"))
	groups, err = s.ConfigGroups(ctx, "p", "c2")
	require.NoError(t, err)
	require.Empty(t, groups)
	requireNotFound(t, s.DeleteMachineGroup(ctx, "p", "g2"), meta.KindMachineGroup)
}

func testAccessKeys(t *testing.T, s meta.Store) {
	ctx := context.Background()
	_, err := s.GetAccessKey(ctx, "k1")
	requireNotFound(t, err, meta.KindAccessKey)
	k := meta.AccessKey{ID: "k1", Secret: "s1", Projects: map[string]meta.Permission{"a": meta.PermWrite}, CreateTime: t0}
	require.NoError(t, s.PutAccessKey(ctx, k))
	require.NoError(t, s.PutAccessKey(ctx, meta.AccessKey{ID: "admin", Secret: "s", Admin: true}))
	k.Projects["b"] = meta.PermWrite // not aliased
	got, err := s.GetAccessKey(ctx, "k1")
	require.NoError(t, err)
	require.Equal(t, "s1", got.Secret)
	require.True(t, got.Allows("a", meta.PermWrite))
	require.False(t, got.Allows("b", meta.PermRead))

	keys, err := s.ListAccessKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	require.Equal(t, "admin", keys[0].ID)
	require.True(t, keys[0].Admin)

	require.NoError(t, s.DeleteAccessKey(ctx, "k1"))
	requireNotFound(t, s.DeleteAccessKey(ctx, "k1"), meta.KindAccessKey)
	require.Error(t, s.PutAccessKey(ctx, meta.AccessKey{ID: "x"}), "a key without a secret is refused")
}

func testConsoleSessions(t *testing.T, s meta.Store) {
	ctx := context.Background()
	_, err := s.GetConsoleSession(ctx, "s1")
	requireNotFound(t, err, meta.KindConsoleSession)
	s1 := meta.ConsoleSession{ID: "s1", KeyID: "k1", SecretMAC: "mac1", CSRFToken: "csrf1", Created: t0, LastUsed: t0}
	s2 := meta.ConsoleSession{ID: "s2", KeyID: "k2", SecretMAC: "mac2", CSRFToken: "csrf2", Created: t0, LastUsed: t0.Add(time.Minute)}
	s0 := meta.ConsoleSession{ID: "s0", KeyID: "k1", SecretMAC: "mac0", CSRFToken: "csrf0", Created: t0, LastUsed: t0}
	for _, cs := range []meta.ConsoleSession{s1, s2, s0} {
		require.NoError(t, s.PutConsoleSession(ctx, cs))
	}
	require.Error(t, s.PutConsoleSession(ctx, meta.ConsoleSession{KeyID: "k1"}), "a session without an id is refused")
	require.Error(t, s.PutConsoleSession(ctx, meta.ConsoleSession{ID: "x"}), "a session without a key is refused")

	got, err := s.GetConsoleSession(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, "k1", got.KeyID)
	require.Equal(t, "mac1", got.SecretMAC)
	require.Equal(t, "csrf1", got.CSRFToken)
	require.True(t, got.Created.Equal(t0))
	require.True(t, got.LastUsed.Equal(t0))

	list, err := s.ListConsoleSessions(ctx)
	require.NoError(t, err)
	require.Len(t, list, 3)
	require.Equal(t, []string{"s0", "s1", "s2"}, []string{list[0].ID, list[1].ID, list[2].ID}, "sorted by id")

	// Touch moves LastUsed forward only, and never brings a deleted
	// session back.
	require.NoError(t, s.TouchConsoleSession(ctx, "s1", t0.Add(time.Hour)))
	require.NoError(t, s.TouchConsoleSession(ctx, "s1", t0.Add(time.Minute)))
	got, err = s.GetConsoleSession(ctx, "s1")
	require.NoError(t, err)
	require.True(t, got.LastUsed.Equal(t0.Add(time.Hour)), "LastUsed %v", got.LastUsed)
	require.True(t, got.Created.Equal(t0), "Touch changes nothing else")
	require.Equal(t, "csrf1", got.CSRFToken)
	requireNotFound(t, s.TouchConsoleSession(ctx, "nope", t0), meta.KindConsoleSession)

	// Put replaces.
	s2.CSRFToken = "csrf2b"
	require.NoError(t, s.PutConsoleSession(ctx, s2))
	got, err = s.GetConsoleSession(ctx, "s2")
	require.NoError(t, err)
	require.Equal(t, "csrf2b", got.CSRFToken)

	require.NoError(t, s.DeleteConsoleSessions(ctx, "s1", "missing"))
	_, err = s.GetConsoleSession(ctx, "s1")
	requireNotFound(t, err, meta.KindConsoleSession)
	require.NoError(t, s.DeleteConsoleSessions(ctx, "s1"), "deleting twice is no error")
	require.NoError(t, s.DeleteConsoleSessions(ctx), "deleting none is no error")
	requireNotFound(t, s.TouchConsoleSession(ctx, "s1", t0.Add(2*time.Hour)), meta.KindConsoleSession)
	_, err = s.GetConsoleSession(ctx, "s1")
	requireNotFound(t, err, meta.KindConsoleSession)

	// Deleting a key deletes its sessions, and only those.
	require.NoError(t, s.PutAccessKey(ctx, meta.AccessKey{ID: "k1", Secret: "x"}))
	require.NoError(t, s.DeleteAccessKey(ctx, "k1"))
	_, err = s.GetConsoleSession(ctx, "s0")
	requireNotFound(t, err, meta.KindConsoleSession)
	list, err = s.ListConsoleSessions(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "s2", list[0].ID)
}

func testCascade(t *testing.T, s meta.Store) {
	ctx := context.Background()
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p"}))
	require.NoError(t, s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: "l"}))
	require.NoError(t, s.CreateMachineGroup(ctx, meta.MachineGroup{Project: "p", Name: "g"}))
	require.NoError(t, s.CreateConfig(ctx, meta.Config{Project: "p", Name: "c", Raw: json.RawMessage(`{}`)}))
	require.NoError(t, s.DeleteProject(ctx, "p"))
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p"}))
	_, err := s.GetLogstore(ctx, "p", "l")
	requireNotFound(t, err, meta.KindLogstore)
	_, err = s.GetMachineGroup(ctx, "p", "g")
	requireNotFound(t, err, meta.KindMachineGroup)
	_, err = s.GetConfig(ctx, "p", "c")
	requireNotFound(t, err, meta.KindConfig)
}

func testConcurrent(t *testing.T, s meta.Store) {
	ctx := context.Background()
	require.NoError(t, s.CreateProject(ctx, meta.Project{Name: "p"}))
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- s.CreateLogstore(ctx, meta.Logstore{Project: "p", Name: fmt.Sprintf("ls-%d-%d", w, i)})
			}
		}()
		go func() {
			defer wg.Done()
			for range each {
				_, _, err := s.ListLogstores(ctx, "p", meta.Page{})
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	_, total, err := s.ListLogstores(ctx, "p", meta.Page{})
	require.NoError(t, err)
	require.Equal(t, writers*each, total)
}
