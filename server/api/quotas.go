package api

import (
	"context"
	"fmt"

	"github.com/sluicelog/sluice/protocol"
	"github.com/sluicelog/sluice/server/index"
	"github.com/sluicelog/sluice/server/meta"
)

// Quotas bound what keys with write permission can create. Every project
// and logstore costs the server memory and files (a logstore's catalog
// entry, its segments and their metadata), and every indexed key a column
// in each segment. A zero field takes its default.
type Quotas struct {
	// MaxProjects caps the projects (default 100).
	MaxProjects int
	// MaxLogstoresPerProject caps the logstores of one project (default
	// 200, the Log Service's).
	MaxLogstoresPerProject int
	// MaxIndexKeys caps the field-indexed keys of one logstore, json_keys
	// counted (default 500).
	MaxIndexKeys int
}

// Quota error codes (400: creating more is not retryable).
const (
	CodeProjectQuotaExceed  protocol.ErrorCode = "ProjectQuotaExceed" // the Go SDK's PROJECT_QUOTA_EXCEED
	CodeLogStoreQuotaExceed protocol.ErrorCode = "LogStoreQuotaExceed"
	CodeIndexKeyQuotaExceed protocol.ErrorCode = "IndexKeyQuotaExceed"
)

func (q Quotas) withDefaults() Quotas {
	if q.MaxProjects == 0 {
		q.MaxProjects = 100
	}
	if q.MaxLogstoresPerProject == 0 {
		q.MaxLogstoresPerProject = 200
	}
	if q.MaxIndexKeys == 0 {
		q.MaxIndexKeys = 500
	}
	return q
}

func (q Quotas) validate() error {
	if q.MaxProjects < 0 || q.MaxLogstoresPerProject < 0 || q.MaxIndexKeys < 0 {
		return fmt.Errorf("api: quotas must not be negative: %+v", q)
	}
	return nil
}

// checkProjectQuota refuses a new project past MaxProjects. The caller
// holds a.createMu until the project is created.
func (a *API) checkProjectQuota(ctx context.Context) error {
	_, total, err := a.cfg.Meta.ListProjects(ctx, meta.Page{Size: 1})
	if err != nil {
		return a.metaErr(err)
	}
	if total >= a.cfg.Quotas.MaxProjects {
		return protocol.Errorf(CodeProjectQuotaExceed,
			"the server has %d projects, its quota (--max-projects %d): delete a project or raise the quota", total, a.cfg.Quotas.MaxProjects)
	}
	return nil
}

// checkLogstoreQuota refuses a new logstore in project past
// MaxLogstoresPerProject. The caller holds a.createMu.
func (a *API) checkLogstoreQuota(ctx context.Context, project string) error {
	_, total, err := a.cfg.Meta.ListLogstores(ctx, project, meta.Page{Size: 1})
	if err != nil {
		return a.metaErr(err)
	}
	if total >= a.cfg.Quotas.MaxLogstoresPerProject {
		return protocol.Errorf(CodeLogStoreQuotaExceed,
			"project %q has %d logstores, its quota (--max-logstores-per-project %d): delete a logstore or raise the quota", project, total, a.cfg.Quotas.MaxLogstoresPerProject)
	}
	return nil
}

// checkIndexQuota refuses an index with more than MaxIndexKeys keys.
func (a *API) checkIndexQuota(cfg *index.Config) error {
	n := 0
	var count func(keys map[string]index.KeyConfig)
	count = func(keys map[string]index.KeyConfig) {
		for _, k := range keys {
			n++
			count(k.JSONKeys)
		}
	}
	count(cfg.Keys)
	if n > a.cfg.Quotas.MaxIndexKeys {
		return protocol.Errorf(CodeIndexKeyQuotaExceed,
			"the index has %d keys (json_keys included); at most %d are allowed (--max-index-keys): index fewer keys", n, a.cfg.Quotas.MaxIndexKeys)
	}
	return nil
}
