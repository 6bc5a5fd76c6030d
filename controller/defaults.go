package controller

import (
	"context"
	"fmt"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/go-logr/logr"
)

// OperationLogstore is the logstore of the default project where the
// controller records what it did, as Logtail's alibaba-log-controller does.
const OperationLogstore = "config-operation-log"

// Defaults creates what a Logtail install creates before any resource
// exists, so users who start in the console have something to attach
// configs to: the default project k8s-log-<clusterId>, its machine group
// k8s-group-<clusterId> (user-defined identity, the DaemonSet agents' id)
// and the config-operation-log logstore. Existing objects are left as they
// are. It is a manager Runnable: it retries until the server has them all.
type Defaults struct {
	SLS       SLSClient
	ClusterID string
	Logger    logr.Logger
	// RetryInterval between attempts while the server is unreachable
	// (default 10 s).
	RetryInterval time.Duration
	// Done, when set, is closed once everything exists.
	Done chan struct{}
}

// NeedLeaderElection: only the leader writes to the server.
func (d *Defaults) NeedLeaderElection() bool { return true }

// Start ensures the defaults, retrying until it succeeds or ctx ends.
func (d *Defaults) Start(ctx context.Context) error {
	interval := d.RetryInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	for {
		changes, err := d.Ensure()
		if err == nil {
			d.Logger.Info("default project, machine group and operation logstore exist",
				"project", DefaultProject(d.ClusterID), "machineGroup", DefaultMachineGroup(d.ClusterID), "changes", changes)
			if d.Done != nil {
				close(d.Done)
			}
			return nil
		}
		d.Logger.Info("cannot create the default project yet; retrying", "error", describe(err), "in", interval)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// Ensure creates the missing defaults and says what it created.
func (d *Defaults) Ensure() ([]string, error) {
	project, group := DefaultProject(d.ClusterID), DefaultMachineGroup(d.ClusterID)
	var changes []string
	ok, err := d.SLS.CheckProjectExist(project)
	if err != nil {
		return changes, fmt.Errorf("check project %s: %w", project, err)
	}
	if !ok {
		if _, err := d.SLS.CreateProject(project, "created by sluice-controller for cluster "+d.ClusterID); err != nil && !isCode(err, "ProjectAlreadyExist") {
			return changes, fmt.Errorf("create project %s: %w", project, err)
		}
		changes = append(changes, "created project "+project)
	}
	ok, err = d.SLS.CheckMachineGroupExist(project, group)
	if err != nil {
		return changes, fmt.Errorf("check machine group %s: %w", group, err)
	}
	if !ok {
		mg := &sls.MachineGroup{Name: group, MachineIDType: "userdefined", MachineIDList: []string{group}}
		if err := d.SLS.CreateMachineGroup(project, mg); err != nil && !isCode(err, "MachineGroupAlreadyExist") {
			return changes, fmt.Errorf("create machine group %s: %w", group, err)
		}
		changes = append(changes, "created machine group "+group)
	}
	ok, err = d.SLS.CheckLogstoreExist(project, OperationLogstore)
	if err != nil {
		return changes, fmt.Errorf("check logstore %s: %w", OperationLogstore, err)
	}
	if !ok {
		err := d.SLS.CreateLogStoreV2(project, &sls.LogStore{Name: OperationLogstore, TTL: 90, ShardCount: 1})
		if err != nil && !isCode(err, "LogStoreAlreadyExist") {
			return changes, fmt.Errorf("create logstore %s: %w", OperationLogstore, err)
		}
		if err := d.SLS.CreateIndex(project, OperationLogstore, operationIndex()); err != nil && !isCode(err, "IndexAlreadyExist") {
			return changes, fmt.Errorf("create index of %s: %w", OperationLogstore, err)
		}
		changes = append(changes, "created logstore "+OperationLogstore)
	}
	return changes, nil
}

// operationIndex indexes the operation records' fields.
func operationIndex() sls.Index {
	idx := *sls.CreateDefaultIndex()
	idx.Keys = map[string]sls.IndexKey{}
	for _, k := range operationKeys {
		idx.Keys[k] = sls.IndexKey{Token: idx.Line.Token, Type: "text", DocValue: true}
	}
	return idx
}
