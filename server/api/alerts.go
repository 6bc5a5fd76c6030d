package api

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/alert"
	"github.com/sluicelog/sluice/server/meta"
)

// Alerts: the SDKs' /jobs resource (CreateAlert, GetAlert, UpdateAlert,
// DeleteAlert, EnableAlert, DisableAlert, ListAlert), stored as sent
// like saved searches, checked by server/alert.Parse. GET
// /jobs/{name}/state (Sluice's) answers the alert's status and history,
// which the evaluator (server/alert) writes.

var alertKind = docKind{alert.Kind, "alert", "name", "", ""}

// checkAlert validates an alert body and writes its status field
// (ENABLED or DISABLED) as the SDK's Alert.IsEnabled reads it.
func (a *API) checkAlert(ctx context.Context, q *request, obj map[string]json.RawMessage) error {
	var typ string
	_ = json.Unmarshal(obj["type"], &typ)
	if typ != "" && !strings.EqualFold(typ, "Alert") {
		return protocol.Errorf(protocol.CodeParameterInvalid, "job type %q: Sluice runs jobs of type Alert only", typ)
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	spec, err := alert.Parse(raw)
	if err != nil {
		return protocol.NewError(protocol.CodeParameterInvalid, err.Error())
	}
	if _, err := a.cfg.Meta.GetLogstore(ctx, q.project, spec.Logstore); err != nil {
		return a.metaErr(err)
	}
	status := "ENABLED"
	if !spec.Enabled {
		status = "DISABLED"
	}
	obj["status"], _ = json.Marshal(status)
	obj["type"], _ = json.Marshal("Alert")
	return nil
}

// updateAlert serves UpdateAlert, and EnableAlert / DisableAlert
// (?action=enable|disable, no body).
func (a *API) updateAlert(ctx context.Context, q *request) error {
	action := q.query("action")
	if action == "" {
		return a.updateDocument(alertKind)(ctx, q)
	}
	if action != "enable" && action != "disable" {
		return protocol.Errorf(protocol.CodeParameterInvalid, "action %q: use enable or disable", action)
	}
	a.docMu.Lock()
	defer a.docMu.Unlock()
	d, err := a.cfg.Meta.GetDocument(ctx, q.project, alert.Kind, q.vars["name"])
	if err != nil {
		return a.metaErr(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(d.Raw, &obj); err != nil {
		return err
	}
	status, state := "ENABLED", "Enabled"
	if action == "disable" {
		status, state = "DISABLED", "Disabled"
	}
	obj["status"], _ = json.Marshal(status)
	obj["state"], _ = json.Marshal(state)
	if d.Raw, err = json.Marshal(obj); err != nil {
		return err
	}
	d.LastModifyTime = a.now().UTC()
	if err := a.cfg.Meta.UpdateDocument(ctx, d); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

// deleteAlert deletes the alert and its state.
func (a *API) deleteAlert(ctx context.Context, q *request) error {
	if err := a.cfg.Meta.DeleteDocument(ctx, q.project, alert.Kind, q.vars["name"]); err != nil {
		return a.metaErr(err)
	}
	if err := a.cfg.Meta.DeleteDocument(ctx, q.project, alert.KindState, q.vars["name"]); err != nil && !errors.Is(err, meta.ErrNotFound) {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

// listAlerts serves ListAlert: {count, total, results: [alerts]}, those
// whose name contains jobName when given.
func (a *API) listAlerts(ctx context.Context, q *request) error {
	if t := q.query("jobType"); t != "" && !strings.EqualFold(t, "Alert") {
		return writeJSON(q, map[string]any{"count": 0, "total": 0, "results": []any{}})
	}
	offset, size := 0, 500
	for _, p := range []struct {
		name string
		dst  *int
	}{{"offset", &offset}, {"size", &size}} {
		if s := q.query(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return protocol.Errorf(protocol.CodeParameterInvalid, "%s %q must be a non-negative integer", p.name, s)
			}
			*p.dst = n
		}
	}
	if size == 0 || size > 500 {
		size = 500
	}
	docs, _, err := a.cfg.Meta.ListDocuments(ctx, q.project, alert.Kind, meta.Page{})
	if err != nil {
		return a.metaErr(err)
	}
	filter := q.query("jobName")
	results := []json.RawMessage{}
	total := 0
	for _, d := range docs {
		if !strings.Contains(d.Name, filter) {
			continue
		}
		total++
		if total > offset && len(results) < size {
			results = append(results, d.Raw)
		}
	}
	return writeJSON(q, map[string]any{"count": len(results), "total": total, "results": results})
}

// alertState serves GET /jobs/{name}/state.
func (a *API) alertState(ctx context.Context, q *request) error {
	name := q.vars["name"]
	if _, err := a.cfg.Meta.GetDocument(ctx, q.project, alert.Kind, name); err != nil {
		return a.metaErr(err)
	}
	d, err := a.cfg.Meta.GetDocument(ctx, q.project, alert.KindState, name)
	if errors.Is(err, meta.ErrNotFound) {
		return writeJSON(q, alert.State{Status: alert.StatusOK, History: []alert.Event{}})
	}
	if err != nil {
		return a.metaErr(err)
	}
	return writeRawJSON(q, d.Raw)
}
