package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/sluicelog/sluice/internal/promreg"
)

// WatcherConfig configures a PodWatcher.
type WatcherConfig struct {
	// NodeName is the agent's node (the downward API's spec.nodeName,
	// usually $NODE_NAME); only its pods are watched.
	NodeName string
	// Resync re-delivers every pod this often; 0 disables it.
	Resync time.Duration
	// Grace keeps a deleted pod's metadata this long, so the last lines of
	// its containers, read after the deletion, still get their tags and
	// their files inside the containers are read to the end. 0 means 5
	// minutes.
	Grace time.Duration
	// ConfigMapTTL is how long a ConfigMap read for container env is
	// reused, and how often the env of pods whose ConfigMaps could not be
	// read is resolved again. 0 means 1 minute.
	ConfigMapTTL time.Duration
}

// configMapTimeout bounds the ConfigMap reads of one pod update: the
// informer delivers no other pod meanwhile.
const configMapTimeout = 5 * time.Second

// Settings carry what the watcher needs from the agent.
type Settings struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil: metrics not registered
}

// PodWatcher keeps the metadata of the pods on one node, from a shared
// informer with a spec.nodeName field selector.
type PodWatcher struct {
	cfg    WatcherConfig
	client API
	log    *slog.Logger
	inf    cache.SharedIndexInformer
	done   chan struct{} // closed when the informer's Run returns

	mu   sync.RWMutex
	pods map[string]*podEntry // by UID
	gen  atomic.Uint64

	pvMu sync.Mutex
	pvs  map[string]string // namespace/claim → volume name

	// ctx ends at Shutdown, so that no ConfigMap read outlives the watcher.
	ctx    context.Context
	cancel context.CancelFunc
	cmMu   sync.Mutex
	cms    map[string]*configMapEntry // namespace/name; entries live ConfigMapTTL
	swept  time.Time
	reads  *prometheus.CounterVec
	retry  chan struct{} // closed when the retry loop returns

	lifeMu  sync.Mutex
	stop    chan struct{}
	started bool
	stopped bool
}

type podEntry struct {
	pod        *corev1.Pod
	containers []Container
	deletedAt  time.Time // zero while the pod exists
	// maps are the ConfigMaps the env was built from, by name: a
	// container's env is fixed when it starts, so later updates of the
	// pod keep these rather than read newer data.
	maps map[string]map[string]string
	// unresolved: a ConfigMap could not be read, or a non-optional one
	// was missing; resolved again every ConfigMapTTL.
	unresolved bool
}

type configMapEntry struct {
	data   map[string]string
	found  bool
	err    error
	at     time.Time
	logged bool
}

// NewPodWatcher returns a watcher of cfg.NodeName's pods through client
// (a CoreClient, or anything else that lists and watches pods).
func NewPodWatcher(client API, cfg WatcherConfig, set Settings) (*PodWatcher, error) {
	if client == nil {
		return nil, errors.New("kube: pod watcher: client is nil")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("kube: pod watcher: node name is empty: set NODE_NAME from the downward API (fieldRef spec.nodeName) in the agent's DaemonSet")
	}
	if cfg.Grace == 0 {
		cfg.Grace = 5 * time.Minute
	}
	if cfg.ConfigMapTTL == 0 {
		cfg.ConfigMapTTL = time.Minute
	}
	w := &PodWatcher{cfg: cfg, client: client, log: set.Logger, pods: map[string]*podEntry{},
		pvs: map[string]string{}, stop: make(chan struct{}), cms: map[string]*configMapEntry{},
		retry: make(chan struct{})}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.reads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_agent_kube_configmap_reads_total",
		Help: "ConfigMaps read for container env (envFrom, configMapKeyRef) by result (ok, not_found, error); variables of unread maps are unset, so selection by them misses the container.",
	}, []string{"result"})
	var err error
	if w.reads, err = promreg.Reuse(set.Registerer, w.reads); err != nil {
		return nil, fmt.Errorf("kube: pod watcher: %w", err)
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	sel := fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return client.ListPods(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return client.WatchPods(ctx, o)
		},
	}
	w.inf = cache.NewSharedIndexInformer(lw, &corev1.Pod{}, cfg.Resync, cache.Indexers{})
	w.done = make(chan struct{})
	// Managed fields are most of a pod object's size and never used here.
	if err := w.inf.SetTransform(func(obj any) (any, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			p.ManagedFields = nil
		}
		return obj, nil
	}); err != nil {
		return nil, fmt.Errorf("kube: pod watcher: %w", err)
	}
	if _, err := w.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.put(obj) },
		UpdateFunc: func(_, obj any) { w.put(obj) },
		DeleteFunc: w.deleted,
	}); err != nil {
		return nil, fmt.Errorf("kube: pod watcher: %w", err)
	}
	return w, nil
}

func (w *PodWatcher) put(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	w.mu.RLock()
	prev := w.pods[string(pod.UID)]
	w.mu.RUnlock()
	e := w.resolve(pod, prev)
	w.mu.Lock()
	w.pods[string(pod.UID)] = e
	w.mu.Unlock()
	w.gen.Add(1)
}

// resolve builds the containers of pod, reading the ConfigMaps their env
// refers to. prev is the pod's previous entry (nil: none): the maps it
// was built from are reused.
func (w *PodWatcher) resolve(pod *corev1.Pod, prev *podEntry) *podEntry {
	e := &podEntry{pod: pod}
	if !RefersToConfigMaps(pod) {
		e.containers = ContainersOf(pod)
		return e
	}
	ctx, cancel := context.WithTimeout(w.ctx, configMapTimeout)
	defer cancel()
	e.maps = map[string]map[string]string{}
	lookup := func(name string) (map[string]string, bool) {
		if data, ok := e.maps[name]; ok {
			return data, true
		}
		// An unresolved pod's containers have not all started: the
		// kubelet will read the maps again, so does the watcher.
		if prev != nil && !prev.unresolved {
			if data, ok := prev.maps[name]; ok {
				e.maps[name] = data
				return data, true
			}
		}
		data, found, err := w.configMap(ctx, pod.Namespace, name)
		if err != nil {
			e.unresolved = true
		}
		if found {
			e.maps[name] = data
		}
		return data, found
	}
	var missing []string
	e.containers, missing = ContainersWithConfigMaps(pod, lookup)
	for _, name := range missing {
		e.unresolved = true
		w.logMissing(pod, name)
	}
	return e
}

// configMap reads a ConfigMap, or answers the read of the last
// ConfigMapTTL.
func (w *PodWatcher) configMap(ctx context.Context, namespace, name string) (map[string]string, bool, error) {
	key := namespace + "/" + name
	now := time.Now()
	w.cmMu.Lock()
	if e := w.cms[key]; e != nil && now.Sub(e.at) < w.cfg.ConfigMapTTL {
		w.cmMu.Unlock()
		return e.data, e.found, e.err
	}
	w.cmMu.Unlock()
	cm, err := w.client.GetConfigMap(ctx, namespace, name)
	e := &configMapEntry{at: now}
	switch {
	case err == nil:
		e.data, e.found = cm.Data, true
		w.reads.WithLabelValues("ok").Inc()
	case apierrors.IsNotFound(err):
		w.reads.WithLabelValues("not_found").Inc()
	default:
		e.err, e.logged = err, true
		w.reads.WithLabelValues("error").Inc()
		w.log.Warn("cannot read ConfigMap for container env; its variables are unset (a config selecting or tagging by them misses these containers) until it is read again",
			"configmap", key, "retry_in", w.cfg.ConfigMapTTL, "err", err,
			"hint", "the agent's ClusterRole needs get on configmaps")
	}
	w.cmMu.Lock()
	w.cms[key] = e
	// Keep only the maps read in the last TTL: bounded by the maps the
	// node's pods refer to.
	if now.Sub(w.swept) > w.cfg.ConfigMapTTL {
		for k, old := range w.cms {
			if now.Sub(old.at) >= w.cfg.ConfigMapTTL {
				delete(w.cms, k)
			}
		}
		w.swept = now
	}
	w.cmMu.Unlock()
	return e.data, e.found, e.err
}

// logMissing logs a missing non-optional ConfigMap (or key) once per read.
func (w *PodWatcher) logMissing(pod *corev1.Pod, name string) {
	key := pod.Namespace + "/" + name
	w.cmMu.Lock()
	e := w.cms[key]
	log := e != nil && !e.logged
	if log {
		e.logged = true
	}
	w.cmMu.Unlock()
	if log {
		w.log.Info("ConfigMap (or a key of it) that container env requires is missing; the kubelet does not start such containers, and the variables are unset",
			"configmap", key, "pod", pod.Namespace+"/"+pod.Name)
	}
}

// retryUnresolved resolves again the env of the pods whose ConfigMaps
// could not be read.
func (w *PodWatcher) retryUnresolved() {
	w.mu.RLock()
	var todo []*podEntry
	for _, e := range w.pods {
		if e.unresolved && e.deletedAt.IsZero() {
			todo = append(todo, e)
		}
	}
	w.mu.RUnlock()
	changed := false
	for _, old := range todo {
		e := w.resolve(old.pod, old)
		w.mu.Lock()
		// A newer update of the pod, or its deletion, wins.
		if w.pods[string(old.pod.UID)] == old && old.deletedAt.IsZero() {
			w.pods[string(old.pod.UID)] = e
			changed = changed || !sameEnv(old.containers, e.containers)
		}
		w.mu.Unlock()
	}
	if changed {
		w.gen.Add(1)
	}
}

func sameEnv(a, b []Container) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !maps.Equal(a[i].Env, b[i].Env) {
			return false
		}
	}
	return true
}

func (w *PodWatcher) deleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	w.mu.Lock()
	if e := w.pods[string(pod.UID)]; e != nil {
		e.deletedAt = now
	}
	// Prune the deleted pods whose grace is over.
	for uid, e := range w.pods {
		if !e.deletedAt.IsZero() && now.Sub(e.deletedAt) > w.cfg.Grace {
			delete(w.pods, uid)
		}
	}
	w.mu.Unlock()
	w.gen.Add(1)
}

// Start begins the watch in the background and returns at once.
func (w *PodWatcher) Start(_ context.Context) error {
	w.lifeMu.Lock()
	defer w.lifeMu.Unlock()
	if w.started || w.stopped {
		return nil
	}
	w.started = true
	go func() {
		defer close(w.done)
		w.inf.Run(w.stop)
	}()
	go func() {
		defer close(w.retry)
		t := time.NewTicker(w.cfg.ConfigMapTTL)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.retryUnresolved()
			}
		}
	}()
	return nil
}

// Shutdown stops the watch and waits for its goroutines. Idempotent, safe
// without Start.
func (w *PodWatcher) Shutdown(_ context.Context) error {
	w.lifeMu.Lock()
	defer w.lifeMu.Unlock()
	if w.stopped {
		return nil
	}
	w.stopped = true
	w.cancel()
	close(w.stop)
	if w.started {
		<-w.done
		<-w.retry
	}
	return nil
}

// HasSynced reports whether the first list of the node's pods arrived:
// from then on a pod missing from the cache does not exist (any more).
func (w *PodWatcher) HasSynced() bool { return w.inf.HasSynced() }

// WaitForSync blocks until HasSynced or ctx ends.
func (w *PodWatcher) WaitForSync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), w.inf.HasSynced) {
		return fmt.Errorf("kube: pods of node %s not listed: %w", w.cfg.NodeName, context.Cause(ctx))
	}
	return nil
}

// Generation changes whenever a pod of the node is added, changed or
// deleted, so users can rebuild derived state only then.
func (w *PodWatcher) Generation() uint64 { return w.gen.Load() }

// Container returns the container name of pod podUID (also of a pod
// deleted less than Grace ago).
func (w *PodWatcher) Container(podUID, name string) (Container, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	e := w.pods[podUID]
	if e == nil {
		return Container{}, false
	}
	for _, c := range e.containers {
		if c.Name == name {
			return c, true
		}
	}
	return Container{}, false
}

// Containers appends every container of the node's pods (and of those
// deleted less than Grace ago) to dst.
func (w *PodWatcher) Containers(dst []Container) []Container {
	w.mu.RLock()
	defer w.mu.RUnlock()
	now := time.Now()
	for _, e := range w.pods {
		if !e.deletedAt.IsZero() && now.Sub(e.deletedAt) > w.cfg.Grace {
			continue
		}
		dst = append(dst, e.containers...)
	}
	return dst
}

// VolumeName returns the persistent volume bound to a claim (for the host
// path of a PVC-backed volume), asking the API server once per claim.
func (w *PodWatcher) VolumeName(ctx context.Context, namespace, claim string) (string, error) {
	key := namespace + "/" + claim
	w.pvMu.Lock()
	v, ok := w.pvs[key]
	w.pvMu.Unlock()
	if ok {
		return v, nil
	}
	pvc, err := w.client.GetPersistentVolumeClaim(ctx, namespace, claim)
	if err != nil {
		return "", fmt.Errorf("get persistentvolumeclaim %s: %w", key, err)
	}
	if pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("persistentvolumeclaim %s is not bound yet", key)
	}
	w.pvMu.Lock()
	w.pvs[key] = pvc.Spec.VolumeName
	w.pvMu.Unlock()
	return pvc.Spec.VolumeName, nil
}
