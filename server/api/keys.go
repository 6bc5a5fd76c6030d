package api

import (
	"context"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/auth"
	"github.com/sluicelog/sluice/server/meta"
)

// Access-key administration (Sluice's own API, admin keys only):
//
//	GET    /_sluice/accesskeys        → {"accessKeys": [KeyInfo...]} (no secrets)
//	POST   /_sluice/accesskeys        KeyRequest → {"accessKeyId", "accessKeySecret"}
//	PUT    /_sluice/accesskeys/{id}   KeyRequest (replaces admin, projects, description)
//	DELETE /_sluice/accesskeys/{id}

// KeyRequest is the body of key creation and update. Projects maps a
// project name to "read" or "write".
type KeyRequest struct {
	AccessKeyID     string                     `json:"accessKeyId,omitempty"`     // create: chosen id (generated when empty)
	AccessKeySecret string                     `json:"accessKeySecret,omitempty"` // create: chosen secret (generated when empty)
	Admin           bool                       `json:"admin"`
	Projects        map[string]meta.Permission `json:"projects"`
	Description     string                     `json:"description"`
}

// KeyInfo describes a key without its secret.
type KeyInfo struct {
	AccessKeyID string                     `json:"accessKeyId"`
	Admin       bool                       `json:"admin"`
	Projects    map[string]meta.Permission `json:"projects"`
	Description string                     `json:"description"`
	CreateTime  int64                      `json:"createTime"`
}

// KeyList is the body of the list response.
type KeyList struct {
	AccessKeys []KeyInfo `json:"accessKeys"`
}

func (r *KeyRequest) validate() error {
	for p, perm := range r.Projects {
		if err := validProjectName(p); err != nil {
			return err
		}
		if perm != meta.PermRead && perm != meta.PermWrite {
			return protocol.Errorf(protocol.CodeParameterInvalid, "permission %q on project %q: use read or write", perm, p)
		}
	}
	if !r.Admin && len(r.Projects) == 0 {
		return protocol.NewError(protocol.CodeParameterInvalid, "a key needs admin: true or at least one project permission")
	}
	return nil
}

func (a *API) listKeys(ctx context.Context, q *request) error {
	keys, err := a.cfg.Meta.ListAccessKeys(ctx)
	if err != nil {
		return a.metaErr(err)
	}
	out := KeyList{AccessKeys: []KeyInfo{}}
	for _, k := range keys {
		out.AccessKeys = append(out.AccessKeys, KeyInfo{AccessKeyID: k.ID, Admin: k.Admin, Projects: k.Projects,
			Description: k.Description, CreateTime: k.CreateTime.Unix()})
	}
	return writeJSON(q, out)
}

func (a *API) createKey(ctx context.Context, q *request) error {
	var b KeyRequest
	if err := a.decodeJSON(q, &b); err != nil {
		return err
	}
	if err := b.validate(); err != nil {
		return err
	}
	if (b.AccessKeyID == "") != (b.AccessKeySecret == "") {
		return protocol.NewError(protocol.CodeParameterInvalid, "give both accessKeyId and accessKeySecret, or neither (to generate them)")
	}
	if b.AccessKeyID == "" {
		id, secret, err := auth.NewKey()
		if err != nil {
			return err
		}
		b.AccessKeyID, b.AccessKeySecret = id, secret
	} else {
		if err := validObjectName("access key", b.AccessKeyID); err != nil {
			return err
		}
		if len(b.AccessKeySecret) < auth.MinSecretLength {
			return protocol.Errorf(protocol.CodeParameterInvalid, "accessKeySecret must be at least %d characters", auth.MinSecretLength)
		}
		if _, err := a.cfg.Meta.GetAccessKey(ctx, b.AccessKeyID); err == nil {
			return protocol.Errorf("AccessKeyAlreadyExist", "access key %q already exists", b.AccessKeyID)
		}
	}
	k := meta.AccessKey{ID: b.AccessKeyID, Secret: b.AccessKeySecret, Admin: b.Admin, Projects: b.Projects,
		Description: b.Description, CreateTime: a.now().UTC()}
	if err := a.cfg.Meta.PutAccessKey(ctx, k); err != nil {
		return a.metaErr(err)
	}
	return writeJSON(q, map[string]string{"accessKeyId": k.ID, "accessKeySecret": k.Secret})
}

func (a *API) updateKey(ctx context.Context, q *request) error {
	var b KeyRequest
	if err := a.decodeJSON(q, &b); err != nil {
		return err
	}
	if err := b.validate(); err != nil {
		return err
	}
	k, err := a.cfg.Meta.GetAccessKey(ctx, q.vars["key"])
	if err != nil {
		return a.metaErr(err)
	}
	if k.Admin && !b.Admin {
		if err := a.keepOneAdmin(ctx, k.ID); err != nil {
			return err
		}
	}
	k.Admin, k.Projects, k.Description = b.Admin, b.Projects, b.Description
	if err := a.cfg.Meta.PutAccessKey(ctx, k); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

func (a *API) deleteKey(ctx context.Context, q *request) error {
	k, err := a.cfg.Meta.GetAccessKey(ctx, q.vars["key"])
	if err != nil {
		return a.metaErr(err)
	}
	if k.Admin {
		if err := a.keepOneAdmin(ctx, k.ID); err != nil {
			return err
		}
	}
	if err := a.cfg.Meta.DeleteAccessKey(ctx, k.ID); err != nil {
		return a.metaErr(err)
	}
	return writeEmpty(q)
}

// keepOneAdmin refuses to remove the last admin key (it would lock
// everyone out of key management).
func (a *API) keepOneAdmin(ctx context.Context, removing string) error {
	keys, err := a.cfg.Meta.ListAccessKeys(ctx)
	if err != nil {
		return a.metaErr(err)
	}
	for _, k := range keys {
		if k.Admin && k.ID != removing {
			return nil
		}
	}
	return protocol.Errorf(protocol.CodeParameterInvalid, "access key %q is the last admin key: create another admin key first", removing)
}
