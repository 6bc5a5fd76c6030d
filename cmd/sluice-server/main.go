// Command sluice-server is the Sluice log service: it speaks the Log Service
// HTTP API (PutLogs, GetLogs, projects, logstores, indexes, machine groups,
// Logtail configs) so existing SDKs and agents work against it, and stores
// logs in its data directory as Parquet segments queried with embedded
// DuckDB. See `sluice-server --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicelog/sluice/internal/cli"
	"github.com/sluicelog/sluice/internal/version"
	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/api"
	"github.com/sluicelog/sluice/server/api/apiclient"
	"github.com/sluicelog/sluice/server/app"
	"github.com/sluicelog/sluice/server/auth"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/store/duckdb"
)

const usage = `sluice-server — self-hosted Log Service (Logtail/SLS-compatible API)

Usage:
  sluice-server [serve] [flags]           run the server
  sluice-server query [flags] QUERY       run "search | SQL" and print a table
  sluice-server keys list|create|grant|delete [flags]
                                          manage access keys (admin key required)
  sluice-server --version                 print the version and exit

Serve flags:
  --listen ADDR          listen address (default :8080; env SLUICE_LISTEN)
  --data-dir DIR         metadata, logs and a generated admin key (default ./sluice-data; env SLUICE_DATA_DIR)
  --base-domain NAME     endpoint host name; requests to {project}.NAME target that project,
                         as the SDKs address them (env SLUICE_BASE_DOMAIN). Without it clients
                         must send the x-log-project header.
  --meta URL             where metadata (projects, logstores, configs, keys, console sessions) lives
                         (env SLUICE_META): empty (default) = a JSON file in DATA-DIR; a
                         postgres://user:password@host:5432/db URL = that PostgreSQL database,
                         shared by every sluice-server that names it (schema migrated at start)
  --storage URL          where log segments live (env SLUICE_STORAGE): empty (default) = DATA-DIR;
                         s3://bucket/prefix = that S3-compatible bucket, shared by every sluice-server
                         naming it. Needs --meta postgres://... (the segment catalog lives there). Any
                         node then serves any request; a PutLogs 200 means the logs are in the bucket
                         and recorded in PostgreSQL (group commit every --commit-interval).
  --s3-endpoint URL      S3 server, e.g. http://seaweedfs:8333 (env SLUICE_S3_ENDPOINT; default AWS S3)
  --s3-region NAME       (env SLUICE_S3_REGION; default us-east-1)
  --s3-access-key-id ID, --s3-secret-access-key SECRET
                         (env SLUICE_S3_ACCESS_KEY_ID / SLUICE_S3_SECRET_ACCESS_KEY; both unset: the
                         AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables, then the instance's IAM role)
  --cache-dir DIR        local read cache of segments (default DATA-DIR/cache; env SLUICE_CACHE_DIR)
  --cache-size SIZE      bound of the read cache, least recently used files go first (default 10GiB;
                         env SLUICE_CACHE_SIZE; units KiB, MiB, GiB, TiB)
  --commit-interval D    group commit of shared storage: writes arriving within D are uploaded and
                         acknowledged together (default 200ms; env SLUICE_COMMIT_INTERVAL)
  --resend-window D      shared storage: a group a client sends again with the same __pack_id__ and
                         content (its first answer was lost) within D of its commit is acknowledged
                         without being stored twice (default 1h; 0 = off; env SLUICE_RESEND_WINDOW)
  --node NAME            this server's name among several, in leases and logs (default host name;
                         env SLUICE_NODE)
  --admin-key-id ID, --admin-key-secret SECRET
                         the admin access key (env SLUICE_ADMIN_KEY_ID / SLUICE_ADMIN_KEY_SECRET)
  --admin-key-file FILE  JSON {"accessKeyId": ..., "accessKeySecret": ...} (env SLUICE_ADMIN_KEY_FILE)
                         With no admin key given, the first start generates one into
                         DATA-DIR/admin-key.json (mode 0600) and logs its id.
  --tls-cert FILE, --tls-key FILE
                         serve HTTPS (LoongCollector always uses HTTPS on 443)
  --region NAME          region reported in project descriptions (default sluice)
  --query-timeout D      cancel a GetLogs/GetHistograms query after D (default 1m; 400 QueryTimeout)
  --alert-tick D         look for due alerts every D (default 5s; an alert runs once per its schedule.interval)
  --durability MODE      when PutLogs answers 200 (env SLUICE_DURABILITY), as Elasticsearch's translog:
                           request (default): after the write-ahead log is fsynced; survives power loss.
                           async: after the record is written to the WAL file; survives a crash or
                           kill of sluice-server, and the WAL is fsynced every --sync-interval, the
                           most a power loss or kernel crash can lose. Small LogGroups no longer wait
                           for the disk: about 2x the throughput for 4 KiB groups (docs/benchmarks.md).
  --sync-interval D      WAL fsync interval with --durability=async (default 1s; env SLUICE_SYNC_INTERVAL)
  --log-level LEVEL      debug|info|warn|error (default info); access log at info

Limits (each refusal names its flag; docs/architecture.md "Limits"):
  --metrics-token TOKEN  require "Authorization: Bearer TOKEN" on /metrics (env SLUICE_METRICS_TOKEN;
                         --metrics-token-file FILE reads it from a file, env SLUICE_METRICS_TOKEN_FILE).
                         Without it /metrics is open and names every project and logstore.
  --max-connections N    open connections in all (default 4096, fewer if the file limit is lower);
  --max-connections-per-ip N
                         from one client address (default 512); over a cap a connection is closed
  --read-header-timeout D  a request's header must arrive within D (default 10s)
  --body-read-timeout D  its body, once the signature checks out, within D (default 1m)
  --idle-timeout D       a keep-alive connection may idle D (default 2m)
  --max-inflight-bodies SIZE
                         request bodies read or handled at once, compressed plus declared raw
                         (default 256MiB); past it requests wait 5s, then 503 ServerBusy
  --max-log-future-skew D  PutLogs refuses (400 InvalidTimestamp) logs more than D ahead of the
                         server clock (default 15m), and logs older than the logstore's ttl
  --max-write-days N     a PutLogs may span at most N distinct days (default 32)
  --query-memory SIZE    DuckDB memory_limit (default 768MB); everything DuckDB allocates is held to
                         1.25 x SIZE, past which the query gets 400 QueryLimitExceeded
  --query-threads N      threads one query runs on (default: the cores)
  --max-queries N        queries running at once (default 8); --max-queries-per-project N (default
                         half); a query waits 5s for a slot, then 503 ServerBusy with Retry-After
  --max-query-bytes N    query text length (default 32768); CTEs 16, subqueries 32, joins 16 and
                         bracket nesting 64 are fixed limits of the SQL sandbox
  --max-projects N, --max-logstores-per-project N, --max-index-keys N
                         quotas (defaults 100, 200, 500): creating more answers *QuotaExceed

Client flags (query, keys):
  --endpoint URL         server address (default http://127.0.0.1:8080; env SLUICE_ENDPOINT)
  --access-key-id ID, --access-key-secret SECRET
                         (env SLUICE_ACCESS_KEY_ID / SLUICE_ACCESS_KEY_SECRET)
  --key-file FILE        JSON key file (default: DATA-DIR/admin-key.json when it exists)

Query:
  sluice-server query --project web --logstore access --from -15m 'status:500 | select path, count(*) as n group by path order by n desc'
  --from/--to accept now, -15m, -2h, -7d, unix seconds or RFC 3339; --line N caps search rows (max 100).

Keys:
  sluice-server keys list
  sluice-server keys create --project web=write --project ops=read [--admin] [--description TEXT]
  sluice-server keys grant --id ID --project web=read     (replaces the key's permissions)
  sluice-server keys delete --id ID

Agents: sluice-agent and LoongCollector fetch configs from the ConfigServer v2 paths
  (POST /Agent/Heartbeat, /Agent/FetchPipelineConfig) on the same listener; the agent
  registry (ListMachines) is kept in DATA-DIR/agents.json.

Other endpoints: /console (web console, sign in with an access key), GET /healthz,
  GET /metrics (Prometheus), /_sluice/accesskeys (key admin).

Signals: SIGTERM/SIGINT drain in-flight requests, flush the store and exit.
`

func main() {
	os.Exit(cli.Exit("sluice-server", run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) error {
	if version.IsFlag(args) {
		fmt.Fprintln(stdout, version.String("sluice-server"))
		return nil
	}
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr)
	case "query":
		return query(args, stdout, stderr)
	case "keys":
		return keys(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return cli.Usagef("unknown command %q: use serve, query or keys", cmd)
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage) }
	return fs
}

func serve(args []string, stdout, stderr io.Writer) error {
	cfg, lv, err := parseServe(args, stdout)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return cli.Usage(err) // a flag, or a combination of them
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))

	srv, err := app.New(cfg, app.Settings{Logger: logger})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down: draining requests and flushing the store")
	case serveErr = <-srv.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(serveErr, srv.Shutdown(shutdownCtx))
}

// parseServe turns serve's flags (and their env defaults) into the
// server configuration and log level; a bad value is a *cli.UsageError.
// --help prints the usage on stdout.
func parseServe(args []string, stdout io.Writer) (app.Config, slog.Level, error) {
	fs := newFlags("serve", io.Discard)
	var cfg app.Config
	var level string
	fs.StringVar(&cfg.Listen, "listen", env("SLUICE_LISTEN", ":8080"), "")
	fs.StringVar(&cfg.DataDir, "data-dir", env("SLUICE_DATA_DIR", "./sluice-data"), "")
	fs.StringVar(&cfg.Meta, "meta", env("SLUICE_META", ""), "")
	fs.StringVar(&cfg.Storage, "storage", env("SLUICE_STORAGE", ""), "")
	fs.StringVar(&cfg.Objects.Endpoint, "s3-endpoint", env("SLUICE_S3_ENDPOINT", ""), "")
	fs.StringVar(&cfg.Objects.Region, "s3-region", env("SLUICE_S3_REGION", ""), "")
	fs.StringVar(&cfg.Objects.AccessKey, "s3-access-key-id", env("SLUICE_S3_ACCESS_KEY_ID", ""), "")
	fs.StringVar(&cfg.Objects.SecretKey, "s3-secret-access-key", env("SLUICE_S3_SECRET_ACCESS_KEY", ""), "")
	fs.StringVar(&cfg.Objects.CacheDir, "cache-dir", env("SLUICE_CACHE_DIR", ""), "")
	cacheSize := fs.String("cache-size", env("SLUICE_CACHE_SIZE", "10GiB"), "")
	commitInterval := fs.String("commit-interval", env("SLUICE_COMMIT_INTERVAL", "200ms"), "")
	resendWindow := fs.String("resend-window", env("SLUICE_RESEND_WINDOW", "1h"), "")
	fs.StringVar(&cfg.Node, "node", env("SLUICE_NODE", ""), "")
	fs.StringVar(&cfg.BaseDomain, "base-domain", env("SLUICE_BASE_DOMAIN", ""), "")
	fs.StringVar(&cfg.Region, "region", env("SLUICE_REGION", ""), "")
	fs.StringVar(&cfg.AdminKeyID, "admin-key-id", env("SLUICE_ADMIN_KEY_ID", ""), "")
	fs.StringVar(&cfg.AdminKeySecret, "admin-key-secret", env("SLUICE_ADMIN_KEY_SECRET", ""), "")
	fs.StringVar(&cfg.AdminKeyFile, "admin-key-file", env("SLUICE_ADMIN_KEY_FILE", ""), "")
	fs.StringVar(&cfg.TLSCert, "tls-cert", env("SLUICE_TLS_CERT", ""), "")
	fs.StringVar(&cfg.TLSKey, "tls-key", env("SLUICE_TLS_KEY", ""), "")
	fs.StringVar(&level, "log-level", env("SLUICE_LOG_LEVEL", "info"), "")
	fs.DurationVar(&cfg.QueryTimeout, "query-timeout", time.Minute, "")
	fs.DurationVar(&cfg.AlertTick, "alert-tick", 5*time.Second, "")
	durability := fs.String("durability", env("SLUICE_DURABILITY", "request"), "")
	syncInterval := fs.String("sync-interval", env("SLUICE_SYNC_INTERVAL", "1s"), "")
	fs.StringVar(&cfg.MetricsToken, "metrics-token", env("SLUICE_METRICS_TOKEN", ""), "")
	tokenFile := fs.String("metrics-token-file", env("SLUICE_METRICS_TOKEN_FILE", ""), "")
	fs.IntVar(&cfg.MaxConnections, "max-connections", 0, "")
	fs.IntVar(&cfg.MaxConnectionsPerIP, "max-connections-per-ip", 0, "")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", 0, "")
	fs.DurationVar(&cfg.BodyReadTimeout, "body-read-timeout", 0, "")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 0, "")
	inflight := fs.String("max-inflight-bodies", "", "")
	fs.DurationVar(&cfg.MaxFutureSkew, "max-log-future-skew", 0, "")
	fs.IntVar(&cfg.MaxWriteDays, "max-write-days", 0, "")
	fs.StringVar(&cfg.Store.MemoryLimit, "query-memory", "", "")
	fs.IntVar(&cfg.Store.Threads, "query-threads", 0, "")
	fs.IntVar(&cfg.Store.MaxQueries, "max-queries", 0, "")
	fs.IntVar(&cfg.Store.MaxQueriesPerProject, "max-queries-per-project", 0, "")
	fs.IntVar(&cfg.Store.QueryLimits.MaxBytes, "max-query-bytes", 0, "")
	fs.IntVar(&cfg.Quotas.MaxProjects, "max-projects", 0, "")
	fs.IntVar(&cfg.Quotas.MaxLogstoresPerProject, "max-logstores-per-project", 0, "")
	fs.IntVar(&cfg.Quotas.MaxIndexKeys, "max-index-keys", 0, "")
	var lv slog.Level
	if err := cli.Parse(fs, args, stdout); err != nil {
		return cfg, lv, err
	}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return cfg, lv, fmt.Errorf("--metrics-token-file: %w", err)
		}
		cfg.MetricsToken = strings.TrimSpace(string(b))
		if cfg.MetricsToken == "" {
			return cfg, lv, cli.Usagef("--metrics-token-file %s is empty", *tokenFile)
		}
	}
	if *inflight != "" {
		n, err := duckdb.ParseSize(*inflight)
		if err != nil || n <= 0 {
			return cfg, lv, cli.Usagef("--max-inflight-bodies %q: give a size such as 256MiB", *inflight)
		}
		cfg.MaxInflightBodyBytes = n
	}
	switch *durability {
	case "request":
	case "async":
		d, err := time.ParseDuration(*syncInterval)
		if err != nil || d <= 0 {
			return cfg, lv, cli.Usagef("--sync-interval %q: give a positive duration such as 1s or 200ms", *syncInterval)
		}
		cfg.Store.SyncInterval = d
	default:
		return cfg, lv, cli.Usagef("--durability %q: use request (fsync before every 200) or async (fsync every --sync-interval)", *durability)
	}
	if fs.NArg() > 0 {
		return cfg, lv, cli.Usagef("unexpected arguments %q", fs.Args())
	}
	n, err := parseSize(*cacheSize)
	if err != nil || n <= 0 {
		return cfg, lv, cli.Usagef("--cache-size %q: give a size such as 10GiB or 500MiB", *cacheSize)
	}
	cfg.Objects.CacheBytes = n
	d, err := time.ParseDuration(*commitInterval)
	if err != nil || d <= 0 || d > time.Minute {
		return cfg, lv, cli.Usagef("--commit-interval %q: give a duration between 1ms and 1m, such as 200ms", *commitInterval)
	}
	cfg.CommitInterval = d
	if d, err = time.ParseDuration(*resendWindow); err != nil || d < 0 {
		return cfg, lv, cli.Usagef("--resend-window %q: give a duration such as 1h, or 0 to store every re-sent group again", *resendWindow)
	}
	cfg.ResendWindow = d
	if d == 0 {
		cfg.ResendWindow = -1
	}
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return cfg, lv, cli.Usagef("--log-level %q: use debug, info, warn or error", level)
	}
	return cfg, lv, nil
}

// parseSize reads 10GiB, 500MiB, 1TiB, 4096 (bytes); KB/MB/GB/TB are
// taken as the binary units too.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return int64(n * float64(mult)), nil
}

type clientFlags struct {
	endpoint, id, secret, keyFile, dataDir string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.endpoint, "endpoint", env("SLUICE_ENDPOINT", "http://127.0.0.1:8080"), "")
	fs.StringVar(&c.id, "access-key-id", env("SLUICE_ACCESS_KEY_ID", ""), "")
	fs.StringVar(&c.secret, "access-key-secret", env("SLUICE_ACCESS_KEY_SECRET", ""), "")
	fs.StringVar(&c.keyFile, "key-file", env("SLUICE_KEY_FILE", ""), "")
	fs.StringVar(&c.dataDir, "data-dir", env("SLUICE_DATA_DIR", "./sluice-data"), "")
}

func (c *clientFlags) client() (*apiclient.Client, error) {
	if c.id == "" && c.secret == "" {
		file := c.keyFile
		if file == "" {
			if f := filepath.Join(c.dataDir, app.AdminKeyFileName); fileExists(f) {
				file = f
			}
		}
		if file != "" {
			kf, err := auth.ReadKeyFile(file)
			if err != nil {
				return nil, err
			}
			c.id, c.secret = kf.AccessKeyID, kf.AccessKeySecret
		}
	}
	return apiclient.New(c.endpoint, protocol.Credentials{AccessKeyID: c.id, AccessKeySecret: c.secret}, nil)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func query(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("query", stderr)
	var cf clientFlags
	cf.register(fs)
	project := fs.String("project", "", "")
	logstore := fs.String("logstore", "", "")
	from := fs.String("from", "-15m", "")
	to := fs.String("to", "now", "")
	line := fs.Int("line", 100, "")
	if err := cli.Parse(fs, args, stdout); err != nil {
		return err
	}
	if *project == "" || *logstore == "" {
		return cli.Usagef("query needs --project and --logstore")
	}
	q := strings.Join(fs.Args(), " ")
	if q == "" {
		q = "*"
	}
	now := time.Now()
	f, err := apiclient.ParseTime(*from, now)
	if err != nil {
		return cli.Usagef("--from: %w", err)
	}
	t, err := apiclient.ParseTime(*to, now)
	if err != nil {
		return cli.Usagef("--to: %w", err)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	// --to is inclusive for a user ("now" should include this second).
	res, err := c.GetLogs(context.Background(), *project, *logstore, q, f, t.Add(time.Second), *line)
	if err != nil {
		return err
	}
	return apiclient.WriteTable(stdout, res)
}

type projectPerms map[string]meta.Permission

func (p projectPerms) String() string { return fmt.Sprint(map[string]meta.Permission(p)) }
func (p projectPerms) Set(v string) error {
	name, perm, ok := strings.Cut(v, "=")
	if !ok {
		perm = string(meta.PermWrite)
	}
	if perm != string(meta.PermRead) && perm != string(meta.PermWrite) {
		return fmt.Errorf("--project %q: want NAME=read or NAME=write", v)
	}
	p[name] = meta.Permission(perm)
	return nil
}

func keys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.Usagef("keys needs a subcommand: list, create, grant or delete")
	}
	sub, args := args[0], args[1:]
	switch {
	case cli.IsHelp(sub):
		fmt.Fprint(stdout, usage)
		return flag.ErrHelp
	case sub != "list" && sub != "create" && sub != "grant" && sub != "delete":
		return cli.Usagef("unknown keys subcommand %q: use list, create, grant or delete", sub)
	}
	fs := newFlags("keys "+sub, stderr)
	var cf clientFlags
	cf.register(fs)
	perms := projectPerms{}
	fs.Var(perms, "project", "")
	admin := fs.Bool("admin", false, "")
	desc := fs.String("description", "", "")
	id := fs.String("id", "", "")
	if err := cli.Parse(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected arguments %q: every setting is a --flag", fs.Args())
	}
	if (sub == "grant" || sub == "delete") && *id == "" {
		return cli.Usagef("keys %s needs --id", sub)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch sub {
	case "list":
		ks, err := c.ListKeys(ctx)
		if err != nil {
			return err
		}
		res := &apiclient.Result{Columns: []string{"accessKeyId", "admin", "projects", "description"}}
		for _, k := range ks {
			res.Rows = append(res.Rows, map[string]string{"accessKeyId": k.AccessKeyID, "admin": fmt.Sprint(k.Admin),
				"projects": fmt.Sprint(k.Projects), "description": k.Description})
		}
		return apiclient.WriteTable(stdout, res)
	case "create":
		kid, secret, err := c.CreateKey(ctx, api.KeyRequest{Admin: *admin, Projects: perms, Description: *desc})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "AccessKeyId:     %s\nAccessKeySecret: %s\n(the secret is shown once; store it safely)\n", kid, secret)
		return nil
	case "grant":
		return c.UpdateKey(ctx, *id, api.KeyRequest{Admin: *admin, Projects: perms, Description: *desc})
	case "delete":
		return c.DeleteKey(ctx, *id)
	}
	return nil // unreachable: sub was checked above
}
