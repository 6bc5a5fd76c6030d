package app

import (
	"net"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// connLimiter wraps the listener with caps on open connections: in all
// (max) and from one client IP (perIP). A connection over a cap is closed
// as soon as it is accepted, before anything is read from it, and
// counted; clients see a reset and retry. With request bodies read only
// after authentication and bounded by a budget (server/api), the caps
// bound what idle or slow connections cost: a goroutine, buffers and at
// most MaxHeaderBytes of header each. golang.org/x/net/netutil's
// LimitListener has one global cap and blocks in Accept, which would let
// one client's idle connections lock everyone out.
type connLimiter struct {
	net.Listener
	max, perIP int

	mu    sync.Mutex
	total int
	byIP  map[string]int

	open    prometheus.Gauge
	refused *prometheus.CounterVec
}

func newConnLimiter(ln net.Listener, max, perIP int, reg prometheus.Registerer) (*connLimiter, error) {
	l := &connLimiter{Listener: ln, max: max, perIP: perIP, byIP: map[string]int{},
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_server_connections", Help: "Open client connections."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_server_connections_refused_total",
			Help: "Connections closed at once because a cap was reached, by cap (total, per_ip)."}, []string{"cap"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{l.open, l.refused} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		switch {
		case l.total >= l.max:
			l.mu.Unlock()
			l.refused.WithLabelValues("total").Inc()
			_ = c.Close()
			continue
		case l.byIP[ip] >= l.perIP:
			l.mu.Unlock()
			l.refused.WithLabelValues("per_ip").Inc()
			_ = c.Close()
			continue
		}
		l.total++
		l.byIP[ip]++
		l.open.Set(float64(l.total))
		l.mu.Unlock()
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *connLimiter) release(ip string) {
	l.mu.Lock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
	l.open.Set(float64(l.total))
	l.mu.Unlock()
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

type limitedConn struct {
	net.Conn
	l    *connLimiter
	ip   string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// defaultMaxConnections is 4096, or less when the process may open fewer
// files (leaving room for the store's files and the WAL).
func defaultMaxConnections() int {
	const want, reserve = 4096, 256
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > want+reserve {
		return want
	}
	return max(64, int(lim.Cur)-reserve)
}
