package api

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/meta"
)

// --- machine groups ---

type groupJSON struct {
	GroupName           string              `json:"groupName"`
	GroupType           string              `json:"groupType"`
	MachineIdentifyType string              `json:"machineIdentifyType"`
	MachineList         []string            `json:"machineList"`
	GroupAttribute      meta.GroupAttribute `json:"groupAttribute"`
	CreateTime          int64               `json:"createTime"`
	LastModifyTime      int64               `json:"lastModifyTime"`
}

func (a *API) decodeGroup(q *request) (meta.MachineGroup, error) {
	var b groupJSON
	if err := a.decodeJSON(q, &b); err != nil {
		return meta.MachineGroup{}, err
	}
	if err := validObjectName("machine group", b.GroupName); err != nil {
		return meta.MachineGroup{}, err
	}
	switch b.MachineIdentifyType {
	case "":
		b.MachineIdentifyType = "ip"
	case "ip", "userdefined":
	default:
		return meta.MachineGroup{}, protocol.Errorf(protocol.CodeParameterInvalid,
			"machineIdentifyType %q: use ip or userdefined", b.MachineIdentifyType)
	}
	list := make([]string, 0, len(b.MachineList))
	for _, m := range b.MachineList {
		if m = strings.TrimSpace(m); m != "" {
			list = append(list, m)
		}
	}
	return meta.MachineGroup{
		Project: q.project, Name: b.GroupName, GroupType: b.GroupType, MachineIdentifyType: b.MachineIdentifyType,
		MachineList: list, Attribute: b.GroupAttribute,
	}, nil
}

func (a *API) createMachineGroup(ctx context.Context, q *request) error {
	g, err := a.decodeGroup(q)
	if err != nil {
		return err
	}
	g.CreateTime = a.now().UTC()
	g.LastModifyTime = g.CreateTime
	if err := a.cfg.Meta.CreateMachineGroup(ctx, g); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) getMachineGroup(ctx context.Context, q *request) error {
	g, err := a.cfg.Meta.GetMachineGroup(ctx, q.project, q.vars["group"])
	if err != nil {
		return a.metaErr(err)
	}
	list := g.MachineList
	if list == nil {
		list = []string{}
	}
	return writeJSON(q, groupJSON{
		GroupName: g.Name, GroupType: g.GroupType, MachineIdentifyType: g.MachineIdentifyType, MachineList: list,
		GroupAttribute: g.Attribute, CreateTime: g.CreateTime.Unix(), LastModifyTime: g.LastModifyTime.Unix(),
	})
}

func (a *API) updateMachineGroup(ctx context.Context, q *request) error {
	g, err := a.decodeGroup(q)
	if err != nil {
		return err
	}
	if g.Name != q.vars["group"] {
		return protocol.Errorf(protocol.CodeParameterInvalid, "groupName %q in the body differs from %q in the path", g.Name, q.vars["group"])
	}
	old, err := a.cfg.Meta.GetMachineGroup(ctx, q.project, g.Name)
	if err != nil {
		return a.metaErr(err)
	}
	g.CreateTime = old.CreateTime
	g.LastModifyTime = a.now().UTC()
	if err := a.cfg.Meta.UpdateMachineGroup(ctx, g); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) deleteMachineGroup(ctx context.Context, q *request) error {
	if err := a.cfg.Meta.DeleteMachineGroup(ctx, q.project, q.vars["group"]); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) listMachineGroups(ctx context.Context, q *request) error {
	page, err := pageOf(q)
	if err != nil {
		return err
	}
	names, total, err := a.cfg.Meta.ListMachineGroups(ctx, q.project, page)
	if err != nil {
		return a.metaErr(err)
	}
	if names == nil {
		names = []string{}
	}
	return writeJSON(q, map[string]any{"machinegroups": names, "count": len(names), "total": total})
}

// listMachines reports the group's agents (Config.Machines; empty, with the
// keys clients require, when no config server is wired in).
func (a *API) listMachines(ctx context.Context, q *request) error {
	g, err := a.cfg.Meta.GetMachineGroup(ctx, q.project, q.vars["group"])
	if err != nil {
		return a.metaErr(err)
	}
	if a.cfg.Machines == nil {
		return writeJSON(q, map[string]any{"count": 0, "total": 0, "machines": []any{}})
	}
	page, err := pageOf(q)
	if err != nil {
		return err
	}
	b, err := a.cfg.Machines.ListMachinesJSON(ctx, g, page.Offset, page.Size)
	if err != nil {
		return err
	}
	return writeRawJSON(q, b)
}

func (a *API) appliedConfigs(ctx context.Context, q *request) error {
	names, err := a.cfg.Meta.AppliedConfigs(ctx, q.project, q.vars["group"])
	if err != nil {
		return a.metaErr(err)
	}
	if names == nil {
		names = []string{}
	}
	return writeJSON(q, map[string]any{"configs": names, "count": len(names)})
}

func (a *API) applyConfig(ctx context.Context, q *request) error {
	if err := a.cfg.Meta.ApplyConfig(ctx, q.project, q.vars["group"], q.vars["config"]); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) removeConfig(ctx context.Context, q *request) error {
	if err := a.cfg.Meta.RemoveConfig(ctx, q.project, q.vars["group"], q.vars["config"]); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

// --- Logtail configs ---

// decodeConfig validates a config body and returns its name and the body
// to store (as sent, minus server-owned timestamps).
func (a *API) decodeConfig(q *request) (string, []byte, error) {
	body, err := a.plainBody(q)
	if err != nil {
		return "", nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return "", nil, protocol.Errorf(protocol.CodePostBodyInvalid, "config body must be a JSON object: %v", err)
	}
	var name string
	if err := json.Unmarshal(obj["configName"], &name); err != nil || name == "" {
		return "", nil, protocol.NewError(protocol.CodeParameterInvalid, "configName is required (a string)")
	}
	if err := validObjectName("config", name); err != nil {
		return "", nil, err
	}
	delete(obj, "createTime")
	delete(obj, "lastModifyTime")
	raw, err := json.Marshal(obj)
	if err != nil {
		return "", nil, err
	}
	if a.cfg.ValidateConfig != nil {
		if err := a.cfg.ValidateConfig(raw); err != nil {
			return "", nil, protocol.Errorf(protocol.CodeParameterInvalid, "invalid Logtail config %q: %v", name, err)
		}
	}
	return name, raw, nil
}

func (a *API) createConfig(ctx context.Context, q *request) error {
	name, raw, err := a.decodeConfig(q)
	if err != nil {
		return err
	}
	now := a.now().UTC()
	if err := a.cfg.Meta.CreateConfig(ctx, meta.Config{Project: q.project, Name: name, Raw: raw, CreateTime: now, LastModifyTime: now}); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) getConfig(ctx context.Context, q *request) error {
	c, err := a.cfg.Meta.GetConfig(ctx, q.project, q.vars["config"])
	if err != nil {
		return a.metaErr(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(c.Raw, &obj); err != nil {
		return err
	}
	obj["createTime"] = json.RawMessage(unixString(c.CreateTime))
	obj["lastModifyTime"] = json.RawMessage(unixString(c.LastModifyTime))
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return writeRawJSON(q, b)
}

func (a *API) updateConfig(ctx context.Context, q *request) error {
	name, raw, err := a.decodeConfig(q)
	if err != nil {
		return err
	}
	if name != q.vars["config"] {
		return protocol.Errorf(protocol.CodeParameterInvalid, "configName %q in the body differs from %q in the path", name, q.vars["config"])
	}
	old, err := a.cfg.Meta.GetConfig(ctx, q.project, name)
	if err != nil {
		return a.metaErr(err)
	}
	if bytes.Equal(old.Raw, raw) {
		return writeEmpty(q)
	}
	if err := a.cfg.Meta.UpdateConfig(ctx, meta.Config{Project: q.project, Name: name, Raw: raw,
		CreateTime: old.CreateTime, LastModifyTime: a.now().UTC()}); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) deleteConfig(ctx context.Context, q *request) error {
	if err := a.cfg.Meta.DeleteConfig(ctx, q.project, q.vars["config"]); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) listConfigs(ctx context.Context, q *request) error {
	page, err := pageOf(q)
	if err != nil {
		return err
	}
	names, total, err := a.cfg.Meta.ListConfigs(ctx, q.project, page)
	if err != nil {
		return a.metaErr(err)
	}
	if names == nil {
		names = []string{}
	}
	return writeJSON(q, map[string]any{"configs": names, "count": len(names), "total": total})
}

func (a *API) configGroups(ctx context.Context, q *request) error {
	names, err := a.cfg.Meta.ConfigGroups(ctx, q.project, q.vars["config"])
	if err != nil {
		return a.metaErr(err)
	}
	if names == nil {
		names = []string{}
	}
	return writeJSON(q, map[string]any{"machinegroups": names, "count": len(names)})
}
