// Package controller reconciles AliyunLogConfig resources
// (log.alibabacloud.com/v1alpha1) into a Log Service server — Sluice's own
// sluice-server or any server speaking the same API — the way the Logtail
// controller does: ensure the project, the machine groups and the logstore
// (with a default Kubernetes index), create or update the collection config
// with defaults filled in, apply it to the machine groups, and report the
// outcome in status and Kubernetes events. Deleting the resource deletes
// the config and nothing else: logstores and their data are never removed.
//
// The server is reached through SLSClient, which the official Go SDK's
// client implements (NewSLSClient builds one).
package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/sluicelog/sluice/controller/api/v1alpha1"
)

// Finalizer keeps a resource until its config is removed from the server.
const Finalizer = "log.alibabacloud.com/sluice-controller"

// Condition types and reasons.
const (
	ConditionReady  = "Ready"  // summary: Synced and nothing pending
	ConditionSynced = "Synced" // the server matches the spec

	ReasonApplied     = "Applied"
	ReasonInvalidSpec = "InvalidSpec"
	ReasonServerError = "ServerError"
	ReasonDeleting    = "Deleting"
)

// Requeue delays for errors a retry soon will not fix.
const (
	authRetryDelay      = time.Minute     // 401/403: waiting for a fixed key
	permanentRetryDelay = 5 * time.Minute // other 4xx from the server
	defaultResync       = 10 * time.Minute
)

// Reconciler reconciles AliyunLogConfig resources. All fields but Recorder
// are required.
type Reconciler struct {
	Client client.Client
	SLS    SLSClient
	// ClusterID names the default project (k8s-log-<id>) and machine
	// group (k8s-group-<id>).
	ClusterID string
	// Recorder receives Kubernetes events (nil: none).
	Recorder events.EventRecorder
	// OperationLog, when set, also records every event in the
	// config-operation-log logstore.
	OperationLog *OperationLog
	// ResyncPeriod re-checks an applied resource against the server this
	// often, so objects deleted or edited on the server side come back
	// (default 10 minutes; negative: never).
	ResyncPeriod time.Duration
}

// SetupWithManager registers the reconciler with mgr.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	switch {
	case r.Client == nil:
		return errors.New("controller: Reconciler.Client is nil")
	case r.SLS == nil:
		return errors.New("controller: Reconciler.SLS is nil")
	case r.ClusterID == "":
		return errors.New("controller: Reconciler.ClusterID is empty: set --cluster-id")
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.AliyunLogConfig{}, builder.WithPredicates(
			// Status patches bump no generation; finalizer and deletion
			// changes do.
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, finalizerOrDeletionChanged()))).
		Named("aliyunlogconfig").
		Complete(r)
}

func finalizerOrDeletionChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !slices.Equal(e.ObjectOld.GetFinalizers(), e.ObjectNew.GetFinalizers()) ||
			!e.ObjectOld.GetDeletionTimestamp().Equal(e.ObjectNew.GetDeletionTimestamp())
	}}
}

// Reconcile brings the server in line with one AliyunLogConfig.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	obj := &v1alpha1.AliyunLogConfig{}
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	// Finalizer first, so a delete racing the first apply still cleans up.
	if obj.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(obj, Finalizer) {
		controllerutil.AddFinalizer(obj, Finalizer)
		if err := r.Client.Update(ctx, obj); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
		return ctrl.Result{}, nil // the update triggers the next pass
	}

	if !obj.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, obj)
	}

	base := obj.DeepCopy()
	defer func() {
		if equality.Semantic.DeepEqual(base.Status, obj.Status) {
			return
		}
		if err := r.Client.Status().Patch(ctx, obj, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
			retErr = kerrors.NewAggregate([]error{retErr, fmt.Errorf("patch status: %w", err)})
		}
	}()
	return r.reconcileNormal(ctx, obj)
}

func (r *Reconciler) reconcileNormal(ctx context.Context, obj *v1alpha1.AliyunLogConfig) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	d, err := resolve(obj, r.ClusterID)
	if err != nil {
		msg := "invalid spec: " + err.Error()
		if obj.Status.ConfigName != "" {
			msg += " (the previously applied config stays in effect)"
		}
		setStatus(obj, v1alpha1.StatusError, 400, ReasonInvalidSpec, msg)
		r.event(obj, corev1.EventTypeWarning, ReasonInvalidSpec, "Validate", "invalid spec: %v", err)
		return ctrl.Result{}, nil // nothing to retry until the spec changes
	}

	// A renamed config or moved project leaves the old config behind:
	// remove it first so agents do not collect twice.
	st := &obj.Status
	if st.ConfigName != "" && (st.ConfigName != d.ConfigName || st.Project != d.Project) {
		if err := r.deleteConfig(st.Project, st.ConfigName, st.MachineGroups); err != nil {
			return r.serverError(ctx, obj, err)
		}
		r.event(obj, corev1.EventTypeNormal, "ConfigDeleted", "Delete", "deleted previous config %s/%s", st.Project, st.ConfigName)
	}

	changes, err := r.apply(d, st.MachineGroups)
	if err != nil {
		return r.serverError(ctx, obj, err)
	}
	if len(changes) > 0 {
		// One event per pass: the events API rate-limits bursts from one
		// object, and one line reads better in kubectl describe.
		r.event(obj, corev1.EventTypeNormal, ReasonApplied, "Apply", "%s", strings.Join(changes, "; "))
		log.Info("applied", "project", d.Project, "config", d.ConfigName, "changes", changes)
	}
	st.Project, st.Logstore, st.ConfigName, st.MachineGroups = d.Project, d.Logstore.Name, d.ConfigName, d.MachineGroups
	st.ObservedGeneration = obj.Generation
	setStatus(obj, v1alpha1.StatusOK, 200, ReasonApplied,
		fmt.Sprintf("config %s applied to machine groups %v of project %s (logstore %s)", d.ConfigName, d.MachineGroups, d.Project, d.Logstore.Name))
	resync := r.ResyncPeriod
	switch {
	case resync == 0:
		resync = defaultResync
	case resync < 0:
		resync = 0
	}
	return ctrl.Result{RequeueAfter: resync}, nil
}

// apply runs the phases in order and returns what it changed.
// previousGroups are the groups the config was applied to before.
func (r *Reconciler) apply(d *desired, previousGroups []string) ([]string, error) {
	var changes []string
	ok, err := r.SLS.CheckProjectExist(d.Project)
	if err != nil {
		return changes, fmt.Errorf("check project %s: %w", d.Project, err)
	}
	if !ok {
		if _, err := r.SLS.CreateProject(d.Project, "created by sluice-controller"); err != nil && !isCode(err, "ProjectAlreadyExist") {
			return changes, fmt.Errorf("create project %s: %w", d.Project, err)
		}
		changes = append(changes, "created project "+d.Project)
	}

	for _, g := range d.MachineGroups {
		ok, err := r.SLS.CheckMachineGroupExist(d.Project, g)
		if err != nil {
			return changes, fmt.Errorf("check machine group %s: %w", g, err)
		}
		if ok {
			continue // an existing group is the user's: leave it alone
		}
		mg := &sls.MachineGroup{Name: g, MachineIDType: "userdefined", MachineIDList: []string{g}}
		if err := r.SLS.CreateMachineGroup(d.Project, mg); err != nil && !isCode(err, "MachineGroupAlreadyExist") {
			return changes, fmt.Errorf("create machine group %s: %w", g, err)
		}
		changes = append(changes, "created machine group "+g)
	}

	ls := d.Logstore
	ok, err = r.SLS.CheckLogstoreExist(d.Project, ls.Name)
	if err != nil {
		return changes, fmt.Errorf("check logstore %s: %w", ls.Name, err)
	}
	if !ok { // an existing logstore is left alone (shards, TTL, mode)
		err := r.SLS.CreateLogStoreV2(d.Project, &sls.LogStore{
			Name: ls.Name, TTL: ls.TTL, ShardCount: ls.ShardCount, HotTTL: ls.HotTTL, Mode: ls.Mode,
			TelemetryType: ls.TelemetryType, AppendMeta: ls.AppendMeta, WebTracking: ls.EnableTracking,
			AutoSplit: ls.AutoSplit, MaxSplitShard: ls.MaxSplitShard,
		})
		if err != nil && !isCode(err, "LogStoreAlreadyExist") {
			return changes, fmt.Errorf("create logstore %s: %w", ls.Name, err)
		}
		changes = append(changes, fmt.Sprintf("created logstore %s (%d shards, %d days)", ls.Name, ls.ShardCount, ls.TTL))
	}
	// A logstore without any index cannot be searched; one with an index
	// keeps the user's.
	if _, err := r.SLS.GetIndex(d.Project, ls.Name); err != nil {
		if !isCode(err, "IndexConfigNotExist") {
			return changes, fmt.Errorf("get index of %s: %w", ls.Name, err)
		}
		if err := r.SLS.CreateIndex(d.Project, ls.Name, DefaultIndex()); err != nil && !isCode(err, "IndexAlreadyExist") {
			return changes, fmt.Errorf("create index of %s: %w", ls.Name, err)
		}
		changes = append(changes, "created default index on "+ls.Name)
	}

	c, err := r.ensureConfig(d)
	if err != nil {
		return changes, err
	}
	if c != "" {
		changes = append(changes, c)
	}

	applied, err := r.SLS.GetAppliedMachineGroups(d.Project, d.ConfigName)
	if err != nil {
		return changes, fmt.Errorf("list machine groups of config %s: %w", d.ConfigName, err)
	}
	for _, g := range d.MachineGroups {
		if contains(applied, g) {
			continue
		}
		if err := r.SLS.ApplyConfigToMachineGroup(d.Project, d.ConfigName, g); err != nil {
			return changes, fmt.Errorf("apply config %s to machine group %s: %w", d.ConfigName, g, err)
		}
		changes = append(changes, fmt.Sprintf("applied config %s to machine group %s", d.ConfigName, g))
	}
	// Only groups this resource applied before are taken away: someone
	// may have applied the config to more groups by hand.
	for _, g := range previousGroups {
		if contains(d.MachineGroups, g) || !contains(applied, g) {
			continue
		}
		if err := r.SLS.RemoveConfigFromMachineGroup(d.Project, d.ConfigName, g); err != nil && !isNotExist(err) {
			return changes, fmt.Errorf("remove config %s from machine group %s: %w", d.ConfigName, g, err)
		}
		changes = append(changes, fmt.Sprintf("removed config %s from machine group %s", d.ConfigName, g))
	}
	return changes, nil
}

// ensureConfig creates the config or updates it when the server's copy
// differs; it returns a description of the change ("" = none).
func (r *Reconciler) ensureConfig(d *desired) (string, error) {
	current, err := r.SLS.GetConfigString(d.Project, d.ConfigName)
	switch {
	case isCode(err, "ConfigNotExist"):
		if err := r.SLS.CreateConfigString(d.Project, string(d.Config)); err != nil {
			if !isCode(err, "ConfigAlreadyExist") {
				return "", fmt.Errorf("create config %s: %w", d.ConfigName, err)
			}
			// Lost a race with another writer: fall through to update.
		} else {
			return "created config " + d.ConfigName, nil
		}
	case err != nil:
		return "", fmt.Errorf("get config %s: %w", d.ConfigName, err)
	default:
		same, err := sameConfig(current, d.Config)
		if err == nil && same {
			return "", nil
		}
	}
	if err := r.SLS.UpdateConfigString(d.Project, d.ConfigName, string(d.Config)); err != nil {
		return "", fmt.Errorf("update config %s: %w", d.ConfigName, err)
	}
	return "updated config " + d.ConfigName, nil
}

func (r *Reconciler) reconcileDelete(ctx context.Context, obj *v1alpha1.AliyunLogConfig) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return ctrl.Result{}, nil
	}
	st := obj.Status
	project, name, groups := st.Project, st.ConfigName, st.MachineGroups
	if name == "" {
		// Never applied successfully; clean up what the spec names in
		// case an earlier pass got as far as creating the config.
		if d, err := resolve(obj, r.ClusterID); err == nil {
			project, name, groups = d.Project, d.ConfigName, d.MachineGroups
		}
	}
	if name != "" {
		if err := r.deleteConfig(project, name, groups); err != nil {
			base := obj.DeepCopy()
			res, rerr := r.serverError(ctx, obj, fmt.Errorf("delete: %w", err))
			meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonDeleting, Message: obj.Status.Message, ObservedGeneration: obj.Generation})
			if perr := r.Client.Status().Patch(ctx, obj, client.MergeFrom(base)); perr != nil && !apierrors.IsNotFound(perr) {
				rerr = kerrors.NewAggregate([]error{rerr, perr})
			}
			return res, rerr
		}
		r.event(obj, corev1.EventTypeNormal, "ConfigDeleted", "Delete", "deleted config %s/%s (logstore and data kept)", project, name)
	}
	controllerutil.RemoveFinalizer(obj, Finalizer)
	if err := r.Client.Update(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("remove finalizer: %w", err)
	}
	return ctrl.Result{}, nil
}

// deleteConfig removes the config from its groups and deletes it; missing
// projects, groups and configs count as done.
func (r *Reconciler) deleteConfig(project, name string, groups []string) error {
	applied, err := r.SLS.GetAppliedMachineGroups(project, name)
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("list machine groups of config %s: %w", name, err)
	}
	for _, g := range applied {
		if err := r.SLS.RemoveConfigFromMachineGroup(project, name, g); err != nil && !isNotExist(err) {
			return fmt.Errorf("remove config %s from machine group %s: %w", name, g, err)
		}
	}
	_ = groups // applied already covers every group the config is on
	if err := r.SLS.DeleteConfig(project, name); err != nil && !isNotExist(err) {
		return fmt.Errorf("delete config %s: %w", name, err)
	}
	return nil
}

// serverError records a server failure in status and picks the retry:
// transient errors go back to the work queue (exponential backoff), a
// refused key or a rejected request is retried after a fixed delay.
func (r *Reconciler) serverError(ctx context.Context, obj *v1alpha1.AliyunLogConfig, err error) (ctrl.Result, error) {
	code := int32(0)
	var se *sls.Error
	if errors.As(err, &se) && se.HTTPCode > 0 {
		code = se.HTTPCode
	}
	msg := describe(err)
	setStatus(obj, v1alpha1.StatusError, code, ReasonServerError, msg)
	r.event(obj, corev1.EventTypeWarning, ReasonServerError, "Apply", "%s", msg)
	ctrl.LoggerFrom(ctx).Info("server error", "error", msg, "statusCode", code)
	switch {
	case code == 401 || code == 403:
		return ctrl.Result{RequeueAfter: authRetryDelay}, nil
	case code >= 400 && code < 500:
		return ctrl.Result{RequeueAfter: permanentRetryDelay}, nil
	}
	return ctrl.Result{}, err
}

func (r *Reconciler) event(obj *v1alpha1.AliyunLogConfig, typ, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, typ, reason, action, note, args...)
	}
	if r.OperationLog != nil {
		r.OperationLog.Record(obj, typ, reason, action, fmt.Sprintf(note, args...))
	}
}

func setStatus(obj *v1alpha1.AliyunLogConfig, status string, code int32, reason, msg string) {
	st := &obj.Status
	st.Status, st.StatusCode, st.Message = status, code, msg
	synced := metav1.ConditionFalse
	if status == v1alpha1.StatusOK {
		synced = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: ConditionSynced, Status: synced, Reason: reason, Message: msg, ObservedGeneration: obj.Generation})
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: ConditionReady, Status: synced, Reason: reason, Message: msg, ObservedGeneration: obj.Generation})
}
