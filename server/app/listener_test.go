package app

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// Connections over the per-IP cap are closed at once and counted; closing
// one makes room for the next.
func TestConnLimiter(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l, err := newConnLimiter(tcp, 10, 2, prometheus.NewRegistry())
	require.NoError(t, err)
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", tcp.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF || err != nil && !isTimeout(err)
	}
	a, b := dial(), dial()
	s1, s2 := <-accepted, <-accepted
	third := dial()
	require.True(t, closedByServer(third), "the third connection from one IP is closed")
	require.Equal(t, 1.0, testutil.ToFloat64(l.refused.WithLabelValues("per_ip")))
	require.Equal(t, 2.0, testutil.ToFloat64(l.open))
	require.NoError(t, s1.Close())
	fourth := dial()
	s4 := <-accepted
	require.False(t, closedByServer(fourth), "room again after a close")
	require.NoError(t, s2.Close())
	require.NoError(t, s4.Close())
	require.Eventually(t, func() bool { return testutil.ToFloat64(l.open) == 0 }, time.Second, 10*time.Millisecond)
	_, _ = a, b
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A server started on a taken port says so, with the flag that changes it,
// before it creates anything: a second server must not touch the data
// directory the first one may be using.
func TestPortInUseBeforeAnythingIsCreated(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	dir := filepath.Join(t.TempDir(), "data")
	_, err = New(Config{Listen: taken.Addr().String(), DataDir: dir}, Settings{})
	require.ErrorContains(t, err, "the port is in use")
	require.ErrorContains(t, err, "--listen")
	_, statErr := os.Stat(dir)
	require.True(t, os.IsNotExist(statErr), "data dir created: %v", statErr)

	// New holds the port: Start serves on it, Shutdown without Start frees it.
	s, err := New(Config{Listen: "127.0.0.1:0", DataDir: dir}, Settings{})
	require.NoError(t, err)
	addr := s.tcp.Addr().String()
	_, err = New(Config{Listen: addr, DataDir: t.TempDir()}, Settings{})
	require.ErrorContains(t, err, "the port is in use")
	require.NoError(t, s.Shutdown(context.Background()))
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err, "Shutdown without Start releases the port")
	ln.Close()
}
