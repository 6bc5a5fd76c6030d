package controller

import (
	"context"
	"sync"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/go-logr/logr"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelog/sluice/controller/api/v1alpha1"
)

// operationKeys are the fields of an operation record.
var operationKeys = []string{"cluster", "resource", "namespace", "type", "reason", "action", "message", "project", "logstore", "config"}

// LogWriter sends one log group to a logstore (*sls.Client implements it).
type LogWriter interface {
	PutLogs(project, logstore string, lg *sls.LogGroup) error
}

// OperationLog records what the controller does to each AliyunLogConfig —
// the same notes as its Kubernetes events, which expire after an hour — in
// the config-operation-log logstore of the default project, where they can
// be searched like any log (Logtail's controller keeps its run log there).
// Records are sent in batches by Start; while the server is unreachable they
// wait in memory, up to MaxPending, beyond which the oldest are dropped,
// counted and logged.
type OperationLog struct {
	Writer    LogWriter
	ClusterID string
	Logger    logr.Logger
	// FlushInterval between sends (default 1 s).
	FlushInterval time.Duration
	// MaxPending records are kept while sending fails (default 10000).
	MaxPending int

	mu      sync.Mutex
	pending []*sls.Log
	dropped int
}

// NeedLeaderElection: only the leader reconciles, so only it records.
func (o *OperationLog) NeedLeaderElection() bool { return true }

// Record queues one operation on obj.
func (o *OperationLog) Record(obj *v1alpha1.AliyunLogConfig, typ, reason, action, message string) {
	project, logstore, config := obj.Status.Project, obj.Status.Logstore, obj.Status.ConfigName
	if project == "" {
		project = obj.Spec.Project
		if project == "" {
			project = DefaultProject(o.ClusterID)
		}
	}
	if logstore == "" {
		logstore = obj.Spec.Logstore
	}
	if config == "" {
		config = obj.Spec.LogtailConfig.ConfigName
		if config == "" {
			config = obj.Name
		}
	}
	values := map[string]string{
		"cluster": o.ClusterID, "resource": obj.Namespace + "/" + obj.Name, "namespace": obj.Namespace,
		"type": typ, "reason": reason, "action": action, "message": message,
		"project": project, "logstore": logstore, "config": config,
	}
	l := &sls.Log{Time: proto.Uint32(uint32(time.Now().Unix()))}
	for _, k := range operationKeys {
		l.Contents = append(l.Contents, &sls.LogContent{Key: proto.String(k), Value: proto.String(values[k])})
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pending) >= o.maxPending() {
		o.pending = o.pending[1:]
		o.dropped++
	}
	o.pending = append(o.pending, l)
}

// Start sends queued records every FlushInterval until ctx ends, then once
// more.
func (o *OperationLog) Start(ctx context.Context) error {
	interval := o.FlushInterval
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			o.flush()
			return nil
		case <-t.C:
			o.flush()
		}
	}
}

func (o *OperationLog) flush() {
	o.mu.Lock()
	batch, dropped := o.pending, o.dropped
	o.pending, o.dropped = nil, 0
	o.mu.Unlock()
	if dropped > 0 {
		o.Logger.Info("operation records dropped: the server was unreachable and the queue was full", "dropped", dropped, "logstore", OperationLogstore)
	}
	if len(batch) == 0 {
		return
	}
	lg := &sls.LogGroup{Topic: proto.String("sluice-controller"), Source: proto.String(o.ClusterID), Logs: batch}
	if err := o.Writer.PutLogs(DefaultProject(o.ClusterID), OperationLogstore, lg); err != nil {
		o.Logger.Info("cannot write operation records; keeping them for the next attempt", "records", len(batch), "error", describe(err))
		o.mu.Lock()
		o.pending = append(batch, o.pending...)
		if limit := o.maxPending(); len(o.pending) > limit {
			o.dropped += len(o.pending) - limit
			o.pending = o.pending[len(o.pending)-limit:]
		}
		o.mu.Unlock()
		return
	}
	o.Logger.V(1).Info("operation records written", "records", len(batch))
}

func (o *OperationLog) maxPending() int {
	if o.MaxPending > 0 {
		return o.MaxPending
	}
	return 10000
}
