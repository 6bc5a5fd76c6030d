package app

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluicelog/sluice/agent/kube"
)

// newPodWatcher builds the watcher of cfg.Node's pods (DaemonSet mode),
// with the in-cluster service account or cfg.Kubeconfig.
func newPodWatcher(cfg KubeConfig, reg prometheus.Registerer, log *slog.Logger) (*kube.PodWatcher, error) {
	var (
		rc  *rest.Config
		err error
	)
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("--kube-node %s: no Kubernetes API access (in-cluster service account or --kubeconfig): %w", cfg.Node, err)
	}
	client, err := kube.NewCoreClient(rc)
	if err != nil {
		return nil, err
	}
	return kube.NewPodWatcher(client, kube.WatcherConfig{NodeName: cfg.Node}, kube.Settings{Logger: log.With("component", "kube"), Registerer: reg})
}
