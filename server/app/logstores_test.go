package app_test

import (
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelog/sluice/internal/pgtest"
	"github.com/sluicelog/sluice/internal/s3test"
	"github.com/sluicelog/sluice/server/app"
	"github.com/sluicelog/sluice/server/app/apptest"
	"github.com/sluicelog/sluice/server/objstore"
)

// A logstore made through server a after server b started (one
// PostgreSQL metadata database) is served by b: its queries, cursors and
// writes work there, with the logs b can see — its own with per-server
// storage, everyone's with shared storage — instead of "logstore not
// found" for a logstore that GetLogStore lists.
func TestLogstoreMadeOnAnotherServer(t *testing.T) {
	for _, shared := range []bool{false, true} {
		name := map[bool]string{false: "own storage", true: "shared storage"}[shared]
		t.Run(name, func(t *testing.T) {
			cfg := app.Config{Meta: pgtest.DSN(t)}
			if shared {
				bk := s3test.NewBucket(t)
				cfg.Storage = bk.URL
				cfg.Objects = objstore.Config{Endpoint: bk.Endpoint, AccessKey: bk.AccessKey, SecretKey: bk.SecretKey}
			}
			cfg.Node = "a"
			a := apptest.Start(t, apptest.Options{Config: cfg})
			cfg.Node = "b"
			b := apptest.Start(t, apptest.Options{Config: cfg})
			const project, logstore = "made-on-a", "web"
			setupProject(t, a.AdminSDK(), project, logstore)
			c := b.AdminSDK()
			now := time.Now().Unix()

			res, err := c.GetLogs(project, logstore, "", now-60, now+60, "*", 100, 0, true)
			require.NoError(t, err, "GetLogs on b")
			require.Empty(t, res.Logs)
			_, err = c.GetHistograms(project, logstore, "", now-60, now+60, "status:200")
			require.NoError(t, err, "GetHistograms on b")
			begin, err := c.GetCursor(project, logstore, 1, "begin")
			require.NoError(t, err, "GetCursor on b")

			at := uint32(now)
			require.NoError(t, c.PutLogs(project, logstore, &sls.LogGroup{Logs: []*sls.Log{{Time: &at,
				Contents: []*sls.LogContent{{Key: proto.String("status"), Value: proto.String("200")}}}}}), "PutLogs on b")
			res, err = c.GetLogs(project, logstore, "", now-60, now+60, "status:200", 100, 0, true)
			require.NoError(t, err)
			require.Len(t, res.Logs, 1, "b reads the line written to it")
			if shared {
				res, err = a.AdminSDK().GetLogs(project, logstore, "", now-60, now+60, "status:200", 100, 0, true)
				require.NoError(t, err)
				require.Len(t, res.Logs, 1, "a reads the line written to b")
			}
			_, _, err = c.PullLogs(project, logstore, 1, begin, "", 10)
			require.NoError(t, err, "PullLogs on b")
		})
	}
}
