package api

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/meta"
	"github.com/sluicelog/sluice/server/store"
)

// validName checks a project (dash only) or logstore (dash and
// underscore) name against the service's rules: 3-63 characters, lower-case
// letters, digits and the separators, starting and ending with a letter or
// digit.
func validName(kind, name string, underscore bool) error {
	if len(name) < 3 || len(name) > 63 {
		return protocol.Errorf(protocol.CodeParameterInvalid, "%s name %q must be 3 to 63 characters long", kind, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		sep := c == '-' || underscore && c == '_'
		if !alnum && !(sep && i > 0 && i < len(name)-1) {
			allowed := "lower-case letters, digits and '-'"
			if underscore {
				allowed = "lower-case letters, digits, '-' and '_'"
			}
			return protocol.Errorf(protocol.CodeParameterInvalid,
				"%s name %q: use only %s, starting and ending with a letter or digit", kind, name, allowed)
		}
	}
	return nil
}

func validProjectName(name string) error { return validName("project", name, false) }

// validObjectName checks machine group and config names: 1-128 of
// letters, digits, '-', '_' and '.'.
func validObjectName(kind, name string) error {
	if name == "" || len(name) > 128 {
		return protocol.Errorf(protocol.CodeParameterInvalid, "%s name %q must be 1 to 128 characters long", kind, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return protocol.Errorf(protocol.CodeParameterInvalid, "%s name %q: use only letters, digits, '-', '_' and '.'", kind, name)
		}
	}
	return nil
}

func unixString(t interface{ Unix() int64 }) string { return strconv.FormatInt(t.Unix(), 10) }

// --- projects ---

type projectJSON struct {
	ProjectName    string `json:"projectName"`
	Description    string `json:"description"`
	Status         string `json:"status"`
	Region         string `json:"region"`
	Owner          string `json:"owner"`
	CreateTime     string `json:"createTime"`
	LastModifyTime string `json:"lastModifyTime"`
}

func (a *API) projectJSON(p meta.Project) projectJSON {
	return projectJSON{
		ProjectName: p.Name, Description: p.Description, Status: "Normal", Region: a.cfg.Region, Owner: "",
		CreateTime: unixString(p.CreateTime), LastModifyTime: unixString(p.LastModifyTime),
	}
}

func (a *API) createProject(ctx context.Context, q *request) error {
	var b struct {
		ProjectName string `json:"projectName"`
		Description string `json:"description"`
	}
	if err := a.decodeJSON(q, &b); err != nil {
		return err
	}
	name := q.project
	if name == "" {
		name = b.ProjectName
	}
	if b.ProjectName != "" && b.ProjectName != name {
		return protocol.Errorf(protocol.CodeParameterInvalid, "projectName %q in the body differs from project %q of the host name", b.ProjectName, name)
	}
	if err := validProjectName(name); err != nil {
		return err
	}
	q.project = name
	now := a.now().UTC()
	a.createMu.Lock()
	defer a.createMu.Unlock()
	if err := a.checkProjectQuota(ctx); err != nil {
		return err
	}
	if err := a.cfg.Meta.CreateProject(ctx, meta.Project{Name: name, Description: b.Description, CreateTime: now, LastModifyTime: now}); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) getProject(ctx context.Context, q *request) error {
	p, err := a.cfg.Meta.GetProject(ctx, q.project)
	if err != nil {
		return a.metaErr(err)
	}
	return writeJSON(q, a.projectJSON(p))
}

func (a *API) updateProject(ctx context.Context, q *request) error {
	var b struct {
		Description string `json:"description"`
	}
	if err := a.decodeJSON(q, &b); err != nil {
		return err
	}
	p, err := a.cfg.Meta.GetProject(ctx, q.project)
	if err != nil {
		return a.metaErr(err)
	}
	p.Description = b.Description
	p.LastModifyTime = a.now().UTC()
	if err := a.cfg.Meta.UpdateProject(ctx, p); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) deleteProject(ctx context.Context, q *request) error {
	names, _, err := a.cfg.Meta.ListLogstores(ctx, q.project, meta.Page{})
	if err != nil {
		return a.metaErr(err)
	}
	for _, ls := range names {
		if err := a.cfg.Logs.DropLogstore(ctx, q.project, ls); err != nil && !errors.Is(err, store.ErrLogstoreNotFound) {
			return storeErr(err)
		}
	}
	if err := a.cfg.Meta.DeleteProject(ctx, q.project); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

// listProjects lists the projects the key may read (all for admins).
func (a *API) listProjects(ctx context.Context, q *request) error {
	page, err := pageOf(q)
	if err != nil {
		return err
	}
	all, _, err := a.cfg.Meta.ListProjects(ctx, meta.Page{})
	if err != nil {
		return a.metaErr(err)
	}
	visible := make([]projectJSON, 0, len(all))
	for _, p := range all {
		if q.key.Allows(p.Name, meta.PermRead) {
			visible = append(visible, a.projectJSON(p))
		}
	}
	out := meta.Apply(visible, page)
	if out == nil {
		out = []projectJSON{}
	}
	return writeJSON(q, map[string]any{"count": len(out), "total": len(visible), "projects": out})
}

// --- logstores ---

type logstoreJSON struct {
	LogstoreName   string `json:"logstoreName"`
	TTL            int    `json:"ttl"`
	ShardCount     int    `json:"shardCount"`
	EnableTracking bool   `json:"enable_tracking"`
	AutoSplit      bool   `json:"autoSplit"`
	MaxSplitShard  int    `json:"maxSplitShard"`
	AppendMeta     bool   `json:"appendMeta"`
	TelemetryType  string `json:"telemetryType"`
	Mode           string `json:"mode"`
	HotTTL         int    `json:"hot_ttl"`
	CreateTime     int64  `json:"createTime"`
	LastModifyTime int64  `json:"lastModifyTime"`
}

func toLogstoreJSON(ls meta.Logstore) logstoreJSON {
	return logstoreJSON{
		LogstoreName: ls.Name, TTL: ls.TTL, ShardCount: ls.ShardCount, EnableTracking: ls.EnableTracking,
		AutoSplit: ls.AutoSplit, MaxSplitShard: ls.MaxSplitShard, AppendMeta: ls.AppendMeta,
		TelemetryType: ls.TelemetryType, Mode: ls.Mode, HotTTL: ls.HotTTL,
		CreateTime: ls.CreateTime.Unix(), LastModifyTime: ls.LastModifyTime.Unix(),
	}
}

// logstoreBody is the create/update body; pointers tell absent from zero.
type logstoreBody struct {
	LogstoreName   string    `json:"logstoreName"`
	TTL            *flexInt  `json:"ttl"`
	ShardCount     *flexInt  `json:"shardCount"`
	EnableTracking *flexBool `json:"enable_tracking"`
	AutoSplit      *flexBool `json:"autoSplit"`
	MaxSplitShard  *flexInt  `json:"maxSplitShard"`
	AppendMeta     *flexBool `json:"appendMeta"`
	TelemetryType  *string   `json:"telemetryType"`
	Mode           *string   `json:"mode"`
	HotTTL         *flexInt  `json:"hot_ttl"`
}

// maxTTL is the service's "keep forever" TTL in days.
const maxTTL = 3650

func (b *logstoreBody) apply(ls *meta.Logstore) error {
	if b.TTL != nil {
		ls.TTL = int(*b.TTL)
	}
	if b.ShardCount != nil {
		ls.ShardCount = int(*b.ShardCount)
	}
	if b.EnableTracking != nil {
		ls.EnableTracking = bool(*b.EnableTracking)
	}
	if b.AutoSplit != nil {
		ls.AutoSplit = bool(*b.AutoSplit)
	}
	if b.MaxSplitShard != nil {
		ls.MaxSplitShard = int(*b.MaxSplitShard)
	}
	if b.AppendMeta != nil {
		ls.AppendMeta = bool(*b.AppendMeta)
	}
	if b.TelemetryType != nil {
		ls.TelemetryType = *b.TelemetryType
	}
	if b.Mode != nil {
		ls.Mode = *b.Mode
	}
	if b.HotTTL != nil {
		ls.HotTTL = int(*b.HotTTL)
	}
	switch {
	case ls.TTL < 1 || ls.TTL > maxTTL:
		return protocol.Errorf(protocol.CodeLogStoreInfoInvalid, "ttl %d must be between 1 and %d days (%d = keep forever)", ls.TTL, maxTTL, maxTTL)
	case ls.ShardCount < 1 || ls.ShardCount > 256:
		return protocol.Errorf(protocol.CodeLogStoreInfoInvalid, "shardCount %d must be between 1 and 256", ls.ShardCount)
	case ls.HotTTL < 0 || ls.HotTTL > ls.TTL:
		return protocol.Errorf(protocol.CodeLogStoreInfoInvalid, "hot_ttl %d must be between 0 and ttl %d", ls.HotTTL, ls.TTL)
	case ls.TelemetryType != "" && ls.TelemetryType != "None" && ls.TelemetryType != "Metrics":
		return protocol.Errorf(protocol.CodeLogStoreInfoInvalid, "telemetryType %q: use None (logs) or Metrics", ls.TelemetryType)
	case ls.Mode != "" && ls.Mode != "standard" && ls.Mode != "query":
		return protocol.Errorf(protocol.CodeLogStoreInfoInvalid, "mode %q: use standard or query", ls.Mode)
	}
	return nil
}

func (a *API) ensureStore(ctx context.Context, ls meta.Logstore) error {
	spec := store.LogstoreSpec{Project: ls.Project, Logstore: ls.Name, TTLDays: ls.TTL}
	idx, err := a.cfg.Meta.GetIndex(ctx, ls.Project, ls.Name)
	switch {
	case err == nil:
		spec.Index = &idx
	case !errors.Is(err, meta.ErrNotFound):
		return a.metaErr(err)
	}
	if err := a.cfg.Logs.EnsureLogstore(ctx, spec); err != nil {
		return storeErr(err)
	}
	return nil
}

func (a *API) createLogstore(ctx context.Context, q *request) error {
	var b logstoreBody
	if err := a.decodeJSON(q, &b); err != nil {
		return err
	}
	if err := validName("logstore", b.LogstoreName, true); err != nil {
		return err
	}
	now := a.now().UTC()
	ls := meta.Logstore{Project: q.project, Name: b.LogstoreName, TTL: 30, ShardCount: 2, CreateTime: now, LastModifyTime: now}
	if err := b.apply(&ls); err != nil {
		return err
	}
	a.createMu.Lock()
	defer a.createMu.Unlock()
	if err := a.checkLogstoreQuota(ctx, q.project); err != nil {
		return err
	}
	if err := a.cfg.Meta.CreateLogstore(ctx, ls); err != nil {
		return a.metaErr(err)
	}
	if err := a.ensureStore(ctx, ls); err != nil {
		// Without storage the logstore would accept nothing: undo.
		if derr := a.cfg.Meta.DeleteLogstore(ctx, q.project, ls.Name); derr != nil {
			a.log.Error("undo logstore creation", "project", q.project, "logstore", ls.Name, "err", derr)
		}
		return err
	}
	return writeEmpty(q)
}

func (a *API) getLogstore(ctx context.Context, q *request) error {
	ls, err := a.cfg.Meta.GetLogstore(ctx, q.project, q.vars["logstore"])
	if err != nil {
		return a.metaErr(err)
	}
	return writeJSON(q, toLogstoreJSON(ls))
}

func (a *API) updateLogstore(ctx context.Context, q *request) error {
	var b logstoreBody
	if err := a.decodeJSON(q, &b); err != nil {
		return err
	}
	name := q.vars["logstore"]
	if b.LogstoreName != "" && b.LogstoreName != name {
		return protocol.Errorf(protocol.CodeLogStoreInfoInvalid, "logstoreName %q in the body differs from %q in the path", b.LogstoreName, name)
	}
	ls, err := a.cfg.Meta.GetLogstore(ctx, q.project, name)
	if err != nil {
		return a.metaErr(err)
	}
	if b.Mode != nil && ls.Mode != "" && *b.Mode != ls.Mode {
		return protocol.Errorf(protocol.CodeLogStoreInfoInvalid, "mode cannot change after creation (is %q)", ls.Mode)
	}
	if b.ShardCount != nil && int(*b.ShardCount) < ls.ShardCount {
		return protocol.Errorf(protocol.CodeLogStoreInfoInvalid,
			"shardCount cannot shrink from %d to %d: the removed shards' logs and consumer checkpoints would no longer be readable (it can grow)", ls.ShardCount, int(*b.ShardCount))
	}
	if err := b.apply(&ls); err != nil {
		return err
	}
	ls.LastModifyTime = a.now().UTC()
	if err := a.ensureStore(ctx, ls); err != nil {
		return err
	}
	if err := a.cfg.Meta.UpdateLogstore(ctx, ls); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) deleteLogstore(ctx context.Context, q *request) error {
	name := q.vars["logstore"]
	if _, err := a.cfg.Meta.GetLogstore(ctx, q.project, name); err != nil {
		return a.metaErr(err)
	}
	// Data first: a failure leaves the logstore listed so the delete can
	// be retried, never data without a logstore.
	if err := a.cfg.Logs.DropLogstore(ctx, q.project, name); err != nil && !errors.Is(err, store.ErrLogstoreNotFound) {
		return storeErr(err)
	}
	if err := a.cfg.Meta.DeleteLogstore(ctx, q.project, name); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) listLogstores(ctx context.Context, q *request) error {
	page, err := pageOf(q)
	if err != nil {
		return err
	}
	names, total, err := a.cfg.Meta.ListLogstores(ctx, q.project, page)
	if err != nil {
		return a.metaErr(err)
	}
	if names == nil {
		names = []string{}
	}
	return writeJSON(q, map[string]any{"count": len(names), "total": total, "logstores": names})
}

// --- shards ---

type shardJSON struct {
	ShardID           int    `json:"shardID"`
	Status            string `json:"status"`
	InclusiveBeginKey string `json:"inclusiveBeginKey"`
	ExclusiveEndKey   string `json:"exclusiveEndKey"`
	CreateTime        int64  `json:"createTime"`
}

// listShards reports shardCount read-write shards splitting the 128-bit
// MD5 hash-key space evenly (PutLogs routes a hash key by these ranges).
func (a *API) listShards(ctx context.Context, q *request) error {
	ls, err := a.cfg.Meta.GetLogstore(ctx, q.project, q.vars["logstore"])
	if err != nil {
		return a.metaErr(err)
	}
	n := max(ls.ShardCount, 1)
	out := make([]shardJSON, n)
	for i := range out {
		out[i] = shardJSON{ShardID: i, Status: "readwrite", InclusiveBeginKey: shardKeyBound(i, n), ExclusiveEndKey: shardKeyBound(i+1, n), CreateTime: ls.CreateTime.Unix()}
	}
	return writeJSON(q, out)
}

// --- index ---

func validateIndex(cfg *index.Config) error {
	if cfg.Line == nil && len(cfg.Keys) == 0 {
		return protocol.NewError(protocol.CodeParameterInvalid, "index has neither a full-text (line) nor a field (keys) index")
	}
	if cfg.Line != nil && len(cfg.Line.Token) == 0 {
		cfg.Line.Token = index.DefaultTokens()
	}
	lower := make(map[string]string, len(cfg.Keys))
	for name := range cfg.Keys {
		// The embedded store names a column per key and SQL identifiers
		// are case-insensitive there: two such keys would wedge ingestion.
		l := strings.ToLower(name)
		if other, dup := lower[l]; dup {
			a, b := min(name, other), max(name, other)
			return protocol.Errorf(protocol.CodeParameterInvalid,
				"index keys %q and %q differ only in letter case, which this server cannot index side by side: index one of them", a, b)
		}
		lower[l] = name
	}
	for name, k := range cfg.Keys {
		if name == "" {
			return protocol.NewError(protocol.CodeParameterInvalid, "index key with an empty name")
		}
		switch k.Type {
		case index.TypeText, index.TypeLong, index.TypeDouble, index.TypeJSON:
		default:
			return protocol.Errorf(protocol.CodeParameterInvalid, "index key %q: type %q: use text, long, double or json", name, k.Type)
		}
		if (k.Type == index.TypeText || k.Type == index.TypeJSON) && len(k.Token) == 0 {
			k.Token = index.DefaultTokens()
			cfg.Keys[name] = k
		}
	}
	return nil
}

func (a *API) putIndex(ctx context.Context, q *request, create bool) error {
	var cfg index.Config
	if err := a.decodeJSON(q, &cfg); err != nil {
		return err
	}
	if err := validateIndex(&cfg); err != nil {
		return err
	}
	if err := a.checkIndexQuota(&cfg); err != nil {
		return err
	}
	ls, err := a.cfg.Meta.GetLogstore(ctx, q.project, q.vars["logstore"])
	if err != nil {
		return a.metaErr(err)
	}
	_, err = a.cfg.Meta.GetIndex(ctx, q.project, ls.Name)
	switch {
	case create && err == nil:
		return a.metaErr(&meta.ExistsError{Kind: meta.KindIndex, Name: ls.Name})
	case !create && err != nil:
		return a.metaErr(err)
	}
	spec := store.LogstoreSpec{Project: q.project, Logstore: ls.Name, TTLDays: ls.TTL, Index: &cfg}
	if err := a.cfg.Logs.EnsureLogstore(ctx, spec); err != nil {
		return storeErr(err)
	}
	if err := a.cfg.Meta.PutIndex(ctx, q.project, ls.Name, cfg); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) createIndex(ctx context.Context, q *request) error { return a.putIndex(ctx, q, true) }
func (a *API) updateIndex(ctx context.Context, q *request) error { return a.putIndex(ctx, q, false) }

func (a *API) getIndex(ctx context.Context, q *request) error {
	cfg, err := a.cfg.Meta.GetIndex(ctx, q.project, q.vars["logstore"])
	if err != nil {
		return a.metaErr(err)
	}
	return writeJSON(q, cfg)
}

func (a *API) deleteIndex(ctx context.Context, q *request) error {
	if err := a.cfg.Meta.DeleteIndex(ctx, q.project, q.vars["logstore"]); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}
