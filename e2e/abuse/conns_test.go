package abuse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every client of the other probes is 127.0.0.1. Here the abuser and the
// victim dial from other loopback addresses (all of 127.0.0.0/8 is local on
// Linux), so the per-IP cap is seen to hold one address back while another
// is served, and the global cap to hold the total. Small caps keep the
// probe cheap; the caps' code is the same at the defaults (512 and 4096).
func TestConnectionCaps(t *testing.T) {
	const perIP, total = 16, 48
	s := startServer(t, "--max-connections-per-ip", fmt.Sprint(perIP), "--max-connections", fmt.Sprint(total))
	s.provision("victim", 300)
	victimSecret := s.createKey("victim-read", "victim", "read")
	s.client.CloseIdleConnections()

	// The victim is a signed client dialling from 127.0.0.3.
	victim := &server{t: t, addr: s.addr, client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}).DialContext}}}
	victimQuery := func() reply {
		return victim.getLogs("victim-read", victimSecret, "victim", "level: error | select count(*) as n")
	}

	// The abuser opens 40 connections from 127.0.0.2, each sending a
	// request and then holding it open (keep-alive): 16 are served, the
	// others closed at once, unread.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	served, refused := holdConns(t, s.addr, "127.0.0.2", 40, &held)
	t.Logf("abuser 127.0.0.2: %d connections served, %d closed by the server", served, refused)
	require.Equal(t, perIP, served, "connections served from one address")
	require.Equal(t, 40-perIP, refused)

	// Meanwhile the victim from another address is served normally.
	r := victimQuery()
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.status, "%s %s", r.code, r.message)
	require.Contains(t, string(r.body), `"n":"100"`)
	victim.client.CloseIdleConnections()

	// Many addresses, each under its own cap, fill the global one: the
	// server then accepts no more than total connections in all.
	open := served
	var globalRefused int
	for ip := 4; globalRefused == 0 && ip < 20; ip++ {
		ok, no := holdConns(t, s.addr, fmt.Sprintf("127.0.0.%d", ip), perIP, &held)
		open += ok
		globalRefused += no
	}
	t.Logf("filling the global cap: %d connections held in all, then %d closed by the server", open, globalRefused)
	require.Positive(t, globalRefused, "the global cap never refused a connection")
	require.LessOrEqual(t, open, total, "more connections held than --max-connections")

	// Once the abusers let go, everyone is served again (the server frees
	// a slot when it sees the close; the victim retries as clients do).
	for _, c := range held {
		c.Close()
	}
	held = nil
	for i := 0; ; i++ {
		r = victimQuery()
		if r.err == nil {
			break
		}
		require.Less(t, i, 50, "victim not served after the abusers closed: %v", r.err)
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, http.StatusOK, r.status, "%s %s", r.code, r.message)

	// Both caps are counted in /metrics.
	m := metricsText(t, s)
	require.Contains(t, m, fmt.Sprintf(`sluice_server_connections_refused_total{cap="per_ip"} %d`, 40-perIP))
	require.Contains(t, m, `sluice_server_connections_refused_total{cap="total"}`)
	require.True(t, s.proc.Running(), "server died:\n%s", s.proc.LogTail())
}

// holdConns opens n connections to addr from the local address ip, one
// after the other; on each it sends GET /healthz and reads the answer's
// status line. Connections answered 200 are kept open (appended to held);
// those the server closes unanswered are counted as refused. Anything else
// fails the test.
func holdConns(t *testing.T, addr, ip string, n int, held *[]net.Conn) (served, refused int) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	for i := 0; i < n; i++ {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		require.NoError(t, err, "dial from %s", ip)
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		_, werr := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		line, rerr := bufio.NewReader(c).ReadString('\n')
		switch {
		case werr == nil && rerr == nil:
			require.True(t, strings.HasPrefix(line, "HTTP/1.1 200"), "from %s: %q", ip, line)
			_ = c.SetDeadline(time.Time{})
			*held = append(*held, c)
			served++
		case isClosed(werr) || isClosed(rerr):
			c.Close()
			refused++
		default:
			c.Close()
			t.Fatalf("connection from %s: write %v, read %v", ip, werr, rerr)
		}
	}
	return served, refused
}

// isClosed tells a connection the server closed (EOF, reset) from a
// timeout, which would mean the server held it unanswered.
func isClosed(err error) bool {
	if err == nil {
		return false
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err == io.EOF || strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "EOF")
}

func metricsText(t *testing.T, s *server) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
