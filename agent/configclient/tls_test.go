package configclient

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicelog/sluice/logconfig"
	pb "github.com/sluicelog/sluice/protocol/configpb"
)

// An https server is trusted through tls.ca_file, and refused without it.
func TestTLSCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write((&pb.HeartbeatResponse{}).Marshal(nil))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	dir := t.TempDir()
	newClient := func(tc logconfig.TLS) *Client {
		c, err := New(Config{Endpoint: srv.URL, AccessKeyID: "k", AccessKeySecret: "s", CachePath: filepath.Join(dir, "cache.json"), TLS: tc}, Settings{}, nopApplier{})
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		return c
	}
	_, err := newClient(logconfig.TLS{}).heartbeat(context.Background())
	require.ErrorContains(t, err, "certificate")
	_, err = newClient(logconfig.TLS{CAFile: ca}).heartbeat(context.Background())
	require.NoError(t, err)

	_, err = New(Config{Endpoint: srv.URL, AccessKeyID: "k", AccessKeySecret: "s", CachePath: "/x", TLS: logconfig.TLS{CAFile: filepath.Join(dir, "missing.pem")}}, Settings{}, nopApplier{})
	require.ErrorContains(t, err, "tls.ca_file")
}
