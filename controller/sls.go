package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SLSClient is the part of the Log Service API the reconciler uses.
// *sls.Client (github.com/aliyun/aliyun-log-go-sdk) implements it; build one
// for a Sluice server with NewSLSClient.
type SLSClient interface {
	CheckProjectExist(project string) (bool, error)
	CreateProject(name, description string) (*sls.LogProject, error)
	CheckMachineGroupExist(project, group string) (bool, error)
	CreateMachineGroup(project string, m *sls.MachineGroup) error
	CheckLogstoreExist(project, logstore string) (bool, error)
	CreateLogStoreV2(project string, logstore *sls.LogStore) error
	GetIndex(project, logstore string) (*sls.Index, error)
	CreateIndex(project, logstore string, index sls.Index) error
	GetConfigString(project, config string) (string, error)
	CreateConfigString(project, config string) error
	UpdateConfigString(project, configName, config string) error
	DeleteConfig(project, config string) error
	GetAppliedMachineGroups(project, config string) ([]string, error)
	ApplyConfigToMachineGroup(project, config, group string) error
	RemoveConfigFromMachineGroup(project, config, group string) error
}

// SLSOptions configures NewSLSClient.
type SLSOptions struct {
	// Endpoint is the server as clients are configured with it:
	// [http://|https://]host[:port]. The SDK sends each project's requests
	// to {project}.{host}; the connection always goes to host[:port]
	// itself, so no wildcard DNS is needed (the server reads the project
	// from the Host header).
	Endpoint string
	// DialAddress, when set, is the host:port connections go to instead
	// of the endpoint's (tests; a server reached through a tunnel).
	DialAddress string
	// Credentials signs requests (see SecretCredentials,
	// sls.NewStaticCredentialsProvider).
	Credentials sls.CredentialsProvider
	// RequestTimeout bounds one HTTP request (default 10 s).
	RequestTimeout time.Duration
	// RetryTimeout bounds the SDK's own retries of one call (default 5 s):
	// short, because the controller's work queue retries with backoff.
	RetryTimeout time.Duration
	// InsecureSkipVerify disables TLS certificate checks (self-signed
	// in-cluster servers).
	InsecureSkipVerify bool
}

// NewSLSClient returns a Go SDK client that talks to one Log Service
// endpoint whatever project host name the SDK puts in front of it.
func NewSLSClient(o SLSOptions) (*sls.Client, error) {
	if o.Credentials == nil {
		return nil, errors.New("sls client: credentials are required")
	}
	u, err := parseEndpoint(o.Endpoint)
	if err != nil {
		return nil, err
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.RetryTimeout <= 0 {
		o.RetryTimeout = 5 * time.Second
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	if o.DialAddress != "" {
		addr = o.DialAddress
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	if o.InsecureSkipVerify {
		tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // opted in by flag
	}
	c := &sls.Client{
		Endpoint:       u.Scheme + "://" + u.Host,
		RequestTimeOut: o.RequestTimeout,
		RetryTimeOut:   o.RetryTimeout,
		UserAgent:      "sluice-controller",
	}
	c.WithCredentialsProvider(o.Credentials)
	c.SetHTTPClient(&http.Client{Transport: tr, Timeout: o.RequestTimeout})
	return c, nil
}

func parseEndpoint(ep string) (*url.URL, error) {
	if ep == "" {
		return nil, errors.New("sls client: endpoint is empty: set --server-endpoint, e.g. http://sluice-server.sluice:8080")
	}
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil {
		return nil, fmt.Errorf("sls client: endpoint %q: %w", ep, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("sls client: endpoint %q: scheme must be http or https", ep)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("sls client: endpoint %q: want [http[s]://]host[:port] with no path", ep)
	}
	return u, nil
}

// Keys of the credentials Secret.
const (
	SecretKeyAccessKeyID     = "accessKeyId"
	SecretKeyAccessKeySecret = "accessKeySecret"
	SecretKeySecurityToken   = "securityToken" // optional
)

// SecretCredentials reads the access key from a Secret (keys accessKeyId,
// accessKeySecret, optional securityToken) and re-reads it after TTL, so a
// rotated key is picked up without a restart. Use an uncached reader (the
// manager's APIReader): a cached one would watch every Secret.
type SecretCredentials struct {
	Reader client.Reader
	Secret types.NamespacedName
	TTL    time.Duration // default 1 minute

	mu      sync.Mutex
	cached  sls.Credentials
	fetched time.Time
}

// GetCredentials implements sls.CredentialsProvider.
func (s *SecretCredentials) GetCredentials() (sls.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ttl := s.TTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	if !s.fetched.IsZero() && time.Since(s.fetched) < ttl {
		return s.cached, nil
	}
	// The SDK gives no context; bound the read ourselves.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sec corev1.Secret
	if err := s.Reader.Get(ctx, s.Secret, &sec); err != nil {
		return sls.Credentials{}, fmt.Errorf("read credentials secret %s: %w", s.Secret, err)
	}
	c := sls.Credentials{
		AccessKeyID:     strings.TrimSpace(string(sec.Data[SecretKeyAccessKeyID])),
		AccessKeySecret: strings.TrimSpace(string(sec.Data[SecretKeyAccessKeySecret])),
		SecurityToken:   strings.TrimSpace(string(sec.Data[SecretKeySecurityToken])),
	}
	if c.AccessKeyID == "" || c.AccessKeySecret == "" {
		return sls.Credentials{}, fmt.Errorf("credentials secret %s: keys %q and %q must both be set", s.Secret, SecretKeyAccessKeyID, SecretKeyAccessKeySecret)
	}
	s.cached, s.fetched = c, time.Now()
	return c, nil
}
