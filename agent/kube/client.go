package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// API is what the pod watcher needs of the Kubernetes API server.
type API interface {
	ListPods(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error)
	WatchPods(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	GetPersistentVolumeClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error)
	// GetConfigMap reads a ConfigMap that a pod's env refers to; a missing
	// one answers an error for which apierrors.IsNotFound holds.
	GetConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
}

// CoreClient reads pods, claims and ConfigMaps through a REST client that knows only
// the core/v1 types. client-go's typed clients register every API group's
// types (their shared scheme) and bring discovery and apply
// configurations along: a fifth of the agent binary for three resources.
type CoreClient struct {
	rc     *rest.RESTClient
	params runtime.ParameterCodec
}

var _ API = (*CoreClient)(nil)

// NewCoreClient returns a client for cfg (in-cluster or from a kubeconfig).
func NewCoreClient(cfg *rest.Config) (*CoreClient, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("kube: core/v1 scheme: %w", err)
	}
	metav1.AddToGroupVersion(scheme, corev1.SchemeGroupVersion)
	c := *cfg // the caller's config is left as it was
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.APIPath = "/api"
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = "sluice-agent"
	}
	rc, err := rest.RESTClientFor(&c)
	if err != nil {
		return nil, fmt.Errorf("kube: client: %w", err)
	}
	return &CoreClient{rc: rc, params: runtime.NewParameterCodec(scheme)}, nil
}

// ListPods lists pods in every namespace.
func (c *CoreClient) ListPods(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error) {
	list := &corev1.PodList{}
	err := c.rc.Get().Resource("pods").VersionedParams(&opts, c.params).Do(ctx).Into(list)
	return list, err
}

// WatchPods watches pods in every namespace.
func (c *CoreClient) WatchPods(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.rc.Get().Resource("pods").VersionedParams(&opts, c.params).Watch(ctx)
}

// GetPersistentVolumeClaim reads one claim.
func (c *CoreClient) GetPersistentVolumeClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	pvc := &corev1.PersistentVolumeClaim{}
	err := c.rc.Get().Namespace(namespace).Resource("persistentvolumeclaims").Name(name).Do(ctx).Into(pvc)
	return pvc, err
}

// GetConfigMap reads one ConfigMap.
func (c *CoreClient) GetConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := c.rc.Get().Namespace(namespace).Resource("configmaps").Name(name).Do(ctx).Into(cm)
	return cm, err
}
