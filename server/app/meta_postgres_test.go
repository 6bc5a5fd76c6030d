package app_test

import (
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/server/app"
	"github.com/sluicelog/sluice/server/app/apptest"
)

// Two servers on one PostgreSQL metadata database serve the same
// projects, logstores, machine groups and keys, through the SDK.
func TestMetaPostgresSharedByTwoServers(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := apptest.Start(t, apptest.Options{Config: app.Config{Meta: dsn}})
	b := apptest.Start(t, apptest.Options{Config: app.Config{Meta: dsn}})

	_, err := a.AdminSDK().CreateProject("shared", "made on a")
	require.NoError(t, err)
	p, err := b.AdminSDK().GetProject("shared")
	require.NoError(t, err)
	require.Equal(t, "made on a", p.Description)
	require.NoError(t, b.AdminSDK().CreateLogStore("shared", "logs", 7, 1, false, 64))
	ls, err := a.AdminSDK().GetLogStore("shared", "logs")
	require.NoError(t, err)
	require.Equal(t, 7, ls.TTL)
	require.NoError(t, a.AdminSDK().CreateMachineGroup("shared", &sls.MachineGroup{Name: "g", MachineIDType: "ip", MachineIDList: []string{"10.1.1.1"}}))
	groups, _, err := b.AdminSDK().ListMachineGroup("shared", 0, 100)
	require.NoError(t, err)
	require.Equal(t, []string{"g"}, groups)
}

func TestMetaFlagRefusesOtherURLs(t *testing.T) {
	_, err := app.New(app.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Meta: "mysql://u:secret@h/db"}, app.Settings{})
	require.ErrorContains(t, err, "--meta")
	require.NotContains(t, err.Error(), "secret", "the password is not echoed")
}
