// Command sluice-controller reconciles AliyunLogConfig resources
// (log.alibabacloud.com/v1alpha1) into a sluice-server: projects, machine
// groups, logstores, indexes and Logtail configs. At start it creates the
// default project k8s-log-<cluster-id>, machine group k8s-group-<cluster-id>
// and the config-operation-log logstore, where it records its operations.
// See package controller.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sluicelog/sluice/controller"
	"github.com/sluicelog/sluice/controller/api/v1alpha1"
	"github.com/sluicelog/sluice/internal/cli"
	"github.com/sluicelog/sluice/internal/version"
)

type options struct {
	endpoint, dialAddress        string
	insecureSkipVerify           bool
	credentialsSecret            string
	accessKeyID, accessKeySecret string
	clusterID                    string
	metricsAddr, probeAddr       string
	leaderElect                  bool
	leaderElectionNamespace      string
	namespace                    string
	logLevel                     string
}

func main() {
	if version.IsFlag(os.Args[1:]) {
		fmt.Println(version.String("sluice-controller"))
		return
	}
	os.Exit(cli.Exit("sluice-controller", run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// parseFlags reads the flags; errors are *cli.UsageError, and --help
// prints the usage on stdout (flag.ErrHelp).
func parseFlags(args []string, stdout io.Writer) (*options, error) {
	o, err := parseFlagValues(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	return o, cli.Usage(err)
}

func parseFlagValues(args []string, stdout io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sluice-controller", flag.ContinueOnError)
	fs.StringVar(&o.endpoint, "server-endpoint", os.Getenv("SLUICE_SERVER_ENDPOINT"), "Log Service endpoint of sluice-server, [http[s]://]host[:port] (env SLUICE_SERVER_ENDPOINT); the server's --base-domain must be this host")
	fs.StringVar(&o.dialAddress, "server-dial-address", "", "connect to this host:port instead of the endpoint's (optional)")
	fs.BoolVar(&o.insecureSkipVerify, "server-insecure-skip-verify", false, "skip TLS certificate verification of an https endpoint")
	fs.StringVar(&o.credentialsSecret, "credentials-secret", "", "namespace/name of a Secret with keys accessKeyId and accessKeySecret (re-read every minute)")
	fs.StringVar(&o.accessKeyID, "access-key-id", os.Getenv("SLUICE_ACCESS_KEY_ID"), "access key id, instead of --credentials-secret (env SLUICE_ACCESS_KEY_ID)")
	fs.StringVar(&o.accessKeySecret, "access-key-secret", os.Getenv("SLUICE_ACCESS_KEY_SECRET"), "access key secret (env SLUICE_ACCESS_KEY_SECRET)")
	fs.StringVar(&o.clusterID, "cluster-id", os.Getenv("SLUICE_CLUSTER_ID"), "cluster id: default project k8s-log-<id>, default machine group k8s-group-<id> (env SLUICE_CLUSTER_ID)")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus /metrics endpoint (0 = off)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader so only one replica reconciles")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease (default: the pod's namespace)")
	fs.StringVar(&o.namespace, "namespace", "", "watch AliyunLogConfigs in this namespace only (default: all)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sluice-controller --server-endpoint URL --cluster-id ID (--credentials-secret NS/NAME | --access-key-id ID --access-key-secret S) [flags]\n\n"+
			"Reconciles AliyunLogConfig resources (log.alibabacloud.com/v1alpha1) into sluice-server.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.endpoint == "":
		return nil, errors.New("--server-endpoint is required, e.g. http://sluice-server.sluice:8080")
	case o.clusterID == "":
		return nil, errors.New("--cluster-id is required: it names the default project (k8s-log-<id>) and machine group (k8s-group-<id>)")
	case o.credentialsSecret == "" && (o.accessKeyID == "" || o.accessKeySecret == ""):
		return nil, errors.New("credentials are required: --credentials-secret NS/NAME, or --access-key-id and --access-key-secret")
	case o.credentialsSecret != "" && o.accessKeyID != "":
		return nil, errors.New("--credentials-secret and --access-key-id are exclusive: give one")
	}
	if o.credentialsSecret != "" {
		if ns, name, ok := strings.Cut(o.credentialsSecret, "/"); !ok || ns == "" || name == "" {
			return nil, fmt.Errorf("--credentials-secret %q: want namespace/name", o.credentialsSecret)
		}
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return cli.Usagef("--log-level %q: %w", o.logLevel, err)
	}
	logger := logr.FromSlogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	// controller-runtime's packages log through its global logger; main
	// is the one place allowed to set it.
	ctrl.SetLogger(logger)

	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes client config: %w", err)
	}
	mopts := ctrl.Options{
		Scheme:                  scheme,
		Logger:                  logger,
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "sluice-controller.log.alibabacloud.com",
		LeaderElectionNamespace: o.leaderElectionNamespace,
	}
	if o.namespace != "" {
		mopts.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{o.namespace: {}}}
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}

	var creds sls.CredentialsProvider
	if o.credentialsSecret != "" {
		ns, name, _ := strings.Cut(o.credentialsSecret, "/")
		creds = &controller.SecretCredentials{Reader: mgr.GetAPIReader(), Secret: types.NamespacedName{Namespace: ns, Name: name}}
	} else {
		creds = sls.NewStaticCredentialsProvider(o.accessKeyID, o.accessKeySecret, "")
	}
	client, err := controller.NewSLSClient(controller.SLSOptions{
		Endpoint: o.endpoint, DialAddress: o.dialAddress, Credentials: creds, InsecureSkipVerify: o.insecureSkipVerify,
	})
	if err != nil {
		return err
	}
	// What an install creates before any resource exists, and where the
	// controller records its operations.
	defaults := &controller.Defaults{SLS: client, ClusterID: o.clusterID, Logger: logger.WithName("defaults")}
	oplog := &controller.OperationLog{Writer: client, ClusterID: o.clusterID, Logger: logger.WithName("operation-log")}
	for _, runnable := range []manager.Runnable{defaults, oplog} {
		if err := mgr.Add(runnable); err != nil {
			return err
		}
	}
	r := &controller.Reconciler{
		Client: mgr.GetClient(), SLS: client, ClusterID: o.clusterID,
		Recorder: mgr.GetEventRecorder("sluice-controller"), OperationLog: oplog,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger.Info("starting", "endpoint", o.endpoint, "clusterID", o.clusterID,
		"defaultProject", controller.DefaultProject(o.clusterID), "defaultMachineGroup", controller.DefaultMachineGroup(o.clusterID))
	return mgr.Start(ctx)
}
