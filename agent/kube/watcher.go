package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
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
}

// Settings carry what the watcher needs from the agent.
type Settings struct {
	Logger *slog.Logger // nil discards
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

	lifeMu  sync.Mutex
	stop    chan struct{}
	started bool
	stopped bool
}

type podEntry struct {
	containers []Container
	deletedAt  time.Time // zero while the pod exists
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
	w := &PodWatcher{cfg: cfg, client: client, log: set.Logger, pods: map[string]*podEntry{},
		pvs: map[string]string{}, stop: make(chan struct{})}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
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
	e := &podEntry{containers: ContainersOf(pod)}
	w.mu.Lock()
	w.pods[string(pod.UID)] = e
	w.mu.Unlock()
	w.gen.Add(1)
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
	close(w.stop)
	if w.started {
		<-w.done
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
