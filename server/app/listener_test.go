package app

import (
	"io"
	"net"
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
