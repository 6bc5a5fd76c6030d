package api

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/alert"
	"github.com/sluicelog/sluice/server/meta"
)

// Saved searches and dashboards (the SDKs' /savedsearches and /dashboards,
// with a dashboard's charts under /dashboards/{d}/charts): stored as the
// JSON the client sent (meta.Document), after the fields the console and
// the SDKs rely on are checked, so fields this server does not interpret
// survive a round trip.

// maxDocumentBytes bounds one saved search or dashboard as stored.
const maxDocumentBytes = 1 << 20

// docKind describes one document kind's wire names.
type docKind struct {
	kind     meta.Kind
	label    string // in messages
	nameKey  string // the JSON key of its name
	listKey  string // the List response's array of names
	itemsKey string // the List response's array of {name, displayName}
}

var (
	savedSearchKind = docKind{meta.KindSavedSearch, "saved search", "savedsearchName", "savedsearches", "savedsearchItems"}
	dashboardKind   = docKind{meta.KindDashboard, "dashboard", "dashboardName", "dashboards", "dashboardItems"}
)

// parseDocument decodes and checks a document body; name is the name in
// the path ("" on create). It returns the object and its name.
func (a *API) parseDocument(ctx context.Context, q *request, k docKind, name string) (map[string]json.RawMessage, string, error) {
	body, err := a.plainBody(q)
	if err != nil {
		return nil, "", err
	}
	if len(body) > maxDocumentBytes {
		return nil, "", protocol.Errorf(protocol.CodePostBodyTooLarge, "%s is %d bytes: at most %d", k.label, len(body), maxDocumentBytes)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, "", protocol.Errorf(protocol.CodePostBodyInvalid, "the %s must be a JSON object: %v", k.label, err)
	}
	str := func(key string) (string, error) {
		v, ok := obj[key]
		if !ok || string(v) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", protocol.Errorf(protocol.CodeParameterInvalid, "%s %s must be a string", k.label, key)
		}
		return s, nil
	}
	got, err := str(k.nameKey)
	if err != nil {
		return nil, "", err
	}
	switch {
	case name == "" && got == "":
		return nil, "", protocol.Errorf(protocol.CodeParameterInvalid, "%s is required", k.nameKey)
	case name == "":
		name = got
	case got != "" && got != name:
		return nil, "", protocol.Errorf(protocol.CodeParameterInvalid, "%s %q in the body differs from %q in the path: a %s cannot be renamed", k.nameKey, got, name, k.label)
	}
	if err := validObjectName(k.label, name); err != nil {
		return nil, "", err
	}
	obj[k.nameKey], _ = json.Marshal(name)
	switch k.kind {
	case meta.KindSavedSearch:
		query, err := str("searchQuery")
		if err != nil {
			return nil, "", err
		}
		if strings.TrimSpace(query) == "" {
			return nil, "", protocol.Errorf(protocol.CodeParameterInvalid, "saved search %q: searchQuery is required", name)
		}
		ls, err := str("logstore")
		if err != nil {
			return nil, "", err
		}
		if ls == "" {
			return nil, "", protocol.Errorf(protocol.CodeParameterInvalid, "saved search %q: logstore is required", name)
		}
		if _, err := a.cfg.Meta.GetLogstore(ctx, q.project, ls); err != nil {
			return nil, "", a.metaErr(err)
		}
	case meta.KindDashboard:
		if _, err := dashboardCharts(obj); err != nil {
			return nil, "", err
		}
	case alert.Kind:
		if err := a.checkAlert(ctx, q, obj); err != nil {
			return nil, "", err
		}
	}
	return obj, name, nil
}

// dashboardCharts returns a dashboard's charts ("charts": an array of
// objects, each with a unique "title").
func dashboardCharts(obj map[string]json.RawMessage) ([]map[string]json.RawMessage, error) {
	raw, ok := obj["charts"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var charts []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &charts); err != nil {
		return nil, protocol.Errorf(protocol.CodeParameterInvalid, "dashboard charts must be an array of chart objects: %v", err)
	}
	seen := map[string]bool{}
	for i, c := range charts {
		t := chartTitle(c)
		if t == "" {
			return nil, protocol.Errorf(protocol.CodeParameterInvalid, "dashboard chart %d has no title (charts are named by title)", i)
		}
		if seen[t] {
			return nil, protocol.Errorf(protocol.CodeParameterInvalid, "dashboard has two charts titled %q", t)
		}
		seen[t] = true
	}
	return charts, nil
}

func chartTitle(c map[string]json.RawMessage) string {
	var t string
	_ = json.Unmarshal(c["title"], &t)
	return t
}

func (a *API) storeDocument(ctx context.Context, q *request, k docKind, create bool, name string, obj map[string]json.RawMessage) error {
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	now := a.now().UTC()
	d := meta.Document{Project: q.project, Kind: k.kind, Name: name, Raw: raw, CreateTime: now, LastModifyTime: now}
	if create {
		err = a.cfg.Meta.CreateDocument(ctx, d)
	} else {
		old, gerr := a.cfg.Meta.GetDocument(ctx, q.project, k.kind, name)
		if gerr != nil {
			return a.metaErr(gerr)
		}
		d.CreateTime = old.CreateTime
		err = a.cfg.Meta.UpdateDocument(ctx, d)
	}
	if err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) createDocument(k docKind) handlerFunc {
	return func(ctx context.Context, q *request) error {
		obj, name, err := a.parseDocument(ctx, q, k, "")
		if err != nil {
			return err
		}
		return a.storeDocument(ctx, q, k, true, name, obj)
	}
}

func (a *API) updateDocument(k docKind) handlerFunc {
	return func(ctx context.Context, q *request) error {
		a.docMu.Lock()
		defer a.docMu.Unlock()
		obj, name, err := a.parseDocument(ctx, q, k, q.vars["name"])
		if err != nil {
			return err
		}
		return a.storeDocument(ctx, q, k, false, name, obj)
	}
}

func (a *API) getDocument(k docKind) handlerFunc {
	return func(ctx context.Context, q *request) error {
		d, err := a.cfg.Meta.GetDocument(ctx, q.project, k.kind, q.vars["name"])
		if err != nil {
			return a.metaErr(err)
		}
		return writeRawJSON(q, d.Raw)
	}
}

func (a *API) deleteDocument(k docKind) handlerFunc {
	return func(ctx context.Context, q *request) error {
		if err := a.cfg.Meta.DeleteDocument(ctx, q.project, k.kind, q.vars["name"]); err != nil {
			return a.metaErr(err)
		}
		return writeEmpty(q)
	}
}

// listDocuments serves ListSavedSearch and ListDashboard: names (and
// {name, displayName} items) paged by offset and size, those containing
// the name filter (savedsearchName / dashboardName) only when one is
// given. The Go SDK sends these parameters as headers, so headers count
// when the query has none.
func (a *API) listDocuments(k docKind) handlerFunc {
	return func(ctx context.Context, q *request) error {
		param := func(name string) string {
			if v := q.query(name); v != "" {
				return v
			}
			return q.r.Header.Get(name)
		}
		var page meta.Page
		for _, p := range []struct {
			name string
			dst  *int
		}{{"offset", &page.Offset}, {"size", &page.Size}} {
			if s := param(p.name); s != "" {
				n, err := strconv.Atoi(s)
				if err != nil || n < 0 {
					return protocol.Errorf(protocol.CodeParameterInvalid, "%s %q must be a non-negative integer", p.name, s)
				}
				*p.dst = n
			}
		}
		if page.Size == 0 || page.Size > 500 {
			page.Size = 500
		}
		filter := param(k.nameKey)
		var docs []meta.Document
		var total int
		var err error
		if filter == "" {
			docs, total, err = a.cfg.Meta.ListDocuments(ctx, q.project, k.kind, page)
		} else {
			docs, _, err = a.cfg.Meta.ListDocuments(ctx, q.project, k.kind, meta.Page{})
			docs = slices.DeleteFunc(docs, func(d meta.Document) bool { return !strings.Contains(d.Name, filter) })
			total = len(docs)
			docs = meta.Apply(docs, page)
		}
		if err != nil {
			return a.metaErr(err)
		}
		names := make([]string, 0, len(docs))
		items := make([]map[string]string, 0, len(docs))
		for _, d := range docs {
			var v struct {
				DisplayName string `json:"displayName"`
				Description string `json:"description"`
			}
			_ = json.Unmarshal(d.Raw, &v)
			names = append(names, d.Name)
			item := map[string]string{k.nameKey: d.Name, "displayName": v.DisplayName}
			if k.kind == meta.KindDashboard {
				item["description"] = v.Description
			}
			items = append(items, item)
		}
		return writeJSON(q, map[string]any{"count": len(names), "total": total, k.listKey: names, k.itemsKey: items})
	}
}

// editChart serves CreateChart (POST /dashboards/{d}/charts), UpdateChart
// (PUT, the chart named by its title) and DeleteChart (DELETE
// .../charts/{title}) by rewriting the dashboard.
func (a *API) editChart(ctx context.Context, q *request) error {
	a.docMu.Lock()
	defer a.docMu.Unlock()
	name := q.vars["name"]
	d, obj, charts, err := a.dashboard(ctx, q)
	if err != nil {
		return err
	}
	idx := func(title string) int {
		for i, c := range charts {
			if chartTitle(c) == title {
				return i
			}
		}
		return -1
	}
	if q.r.Method == "DELETE" {
		i := idx(q.vars["chart"])
		if i < 0 {
			return chartNotExist(name, q.vars["chart"])
		}
		charts = append(charts[:i], charts[i+1:]...)
	} else {
		body, err := a.plainBody(q)
		if err != nil {
			return err
		}
		var c map[string]json.RawMessage
		if err := json.Unmarshal(body, &c); err != nil || c == nil {
			return protocol.Errorf(protocol.CodePostBodyInvalid, "a chart must be a JSON object: %v", err)
		}
		t := chartTitle(c)
		if t == "" {
			return protocol.NewError(protocol.CodeParameterInvalid, "chart title is required (charts are named by title)")
		}
		i := idx(t)
		switch {
		case q.r.Method == "POST" && i >= 0:
			return protocol.Errorf(protocol.CodeParameterInvalid, "dashboard %q already has a chart titled %q", name, t)
		case q.r.Method == "POST":
			charts = append(charts, c)
		case i < 0:
			return chartNotExist(name, t)
		default:
			charts[i] = c
		}
	}
	if obj["charts"], err = json.Marshal(charts); err != nil {
		return err
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	if len(raw) > maxDocumentBytes {
		return protocol.Errorf(protocol.CodePostBodyTooLarge, "dashboard %q would be %d bytes: at most %d", name, len(raw), maxDocumentBytes)
	}
	d.Raw, d.LastModifyTime = raw, a.now().UTC()
	if err := a.cfg.Meta.UpdateDocument(ctx, d); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

// getChart serves GetChart (GET /dashboards/{d}/charts/{title}).
func (a *API) getChart(ctx context.Context, q *request) error {
	_, _, charts, err := a.dashboard(ctx, q)
	if err != nil {
		return err
	}
	for _, c := range charts {
		if chartTitle(c) == q.vars["chart"] {
			return writeJSON(q, c)
		}
	}
	return chartNotExist(q.vars["name"], q.vars["chart"])
}

// dashboard reads the request's dashboard: the document, its object and
// its charts.
func (a *API) dashboard(ctx context.Context, q *request) (meta.Document, map[string]json.RawMessage, []map[string]json.RawMessage, error) {
	d, err := a.cfg.Meta.GetDocument(ctx, q.project, meta.KindDashboard, q.vars["name"])
	if err != nil {
		return d, nil, nil, a.metaErr(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(d.Raw, &obj); err != nil {
		return d, nil, nil, fmt.Errorf("dashboard %q: stored JSON: %w", d.Name, err)
	}
	charts, err := dashboardCharts(obj)
	return d, obj, charts, err
}

func chartNotExist(dashboard, title string) error {
	return &protocol.Error{HTTPStatus: 404, Code: "ChartNotExist",
		Message: "dashboard " + strconv.Quote(dashboard) + " has no chart titled " + strconv.Quote(title)}
}
