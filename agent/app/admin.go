package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicelog/sluice/agent/supervisor"
)

// StatusSource is what the admin endpoints report on.
type StatusSource interface {
	Status() supervisor.Status
}

// AdminHandler serves /healthz (liveness: 200 while the agent loop runs),
// /status (JSON Status) and /metrics (Prometheus, from g).
func AdminHandler(src StatusSource, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		st := src.Status()
		if !st.Healthy {
			http.Error(w, "agent loop is not running", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(src.Status())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return mux
}

// adminServer serves the admin endpoints from Start until Shutdown.
type adminServer struct {
	addr string
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

func newAdminServer(addr string, h http.Handler) *adminServer {
	return &adminServer{addr: addr, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
}

// Start listens on the address; the error names it (a port in use, most
// often).
func (s *adminServer) Start() error {
	ln, err := net.Listen("tcp", s.addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("status/metrics address %s is in use (another sluice-agent, or another program, holds the port): choose another with --http-listen ADDR (env SLUICE_HTTP_LISTEN), or --http-listen '' to serve none: %w", s.addr, err)
	}
	if err != nil {
		return fmt.Errorf("listen for status/metrics on %s (--http-listen): %w", s.addr, err)
	}
	s.ln = ln
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // ends with ErrServerClosed at Shutdown
	}()
	return nil
}

// Addr is the address listened on (nil before Start).
func (s *adminServer) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops serving, giving requests in flight 2s.
func (s *adminServer) Shutdown() {
	if s.ln == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

// FetchStatus asks a running agent for its status (the `sluice-agent status`
// liveness probe).
func FetchStatus(ctx context.Context, addr string) (supervisor.Status, error) {
	var st supervisor.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("agent status at %s: %w (is sluice-agent running with --http-listen=%s?)", addr, err, addr)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return st, fmt.Errorf("agent status at %s: %w", addr, err)
	}
	notAgent := resp.StatusCode == http.StatusNotFound
	if resp.StatusCode == http.StatusOK {
		if json.Unmarshal(body, &st) == nil {
			return st, nil
		}
		notAgent = true
	}
	if notAgent { // another program holds the port: its page says nothing useful
		return st, fmt.Errorf("%s answers, but not as sluice-agent (HTTP %d for /status): another program holds that port; give the agent's --http-listen address with --addr (or env SLUICE_HTTP_LISTEN)", addr, resp.StatusCode)
	}
	return st, fmt.Errorf("agent status at %s: HTTP %d: %s", addr, resp.StatusCode, bytes.TrimSpace(body[:min(len(body), 512)]))
}

// WriteStatusJSON writes st as indented JSON.
func WriteStatusJSON(w io.Writer, st supervisor.Status) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// WriteStatusText writes st for people: health, then one line per config
// with failures' messages in full.
func WriteStatusText(w io.Writer, st supervisor.Status) {
	health := "healthy"
	if !st.Healthy {
		health = "NOT healthy (config directory not read recently)"
	}
	if st.ConfigDir != "" {
		fmt.Fprintf(w, "agent: %s; config dir %s, last read %s\n", health, st.ConfigDir, st.LastScan.Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "agent: %s\n", health)
	}
	if c := st.Central; c != nil {
		fmt.Fprintf(w, "central config: %s", c.Server)
		if c.LastSuccess != "" {
			fmt.Fprintf(w, ", last heartbeat %s", c.LastSuccess)
		}
		if c.LastError != "" {
			fmt.Fprintf(w, ", FAILING: %s (cached configs keep collecting)", c.LastError)
		}
		fmt.Fprintln(w)
	}
	if c := st.Collection; c != nil {
		fmt.Fprintf(w, "collection: %s unread in watched files, %s waiting in the disk buffer", byteSize(c.LagBytes), byteSize(c.BufferPendingBytes))
		if c.BufferFullWaits > 0 {
			fmt.Fprintf(w, ", readers paused %.0f times for a full buffer (files keep the data)", c.BufferFullWaits)
		}
		fmt.Fprintln(w)
		for _, l := range c.Lagging {
			fmt.Fprintf(w, "  behind: %s %s\n", byteSize(l.Bytes), l.Path)
		}
		for _, b := range c.Buffers {
			writeBufferStatus(w, b)
		}
		if c.LostBytes > 0 {
			fmt.Fprintf(w, "  LOST: %s (see sluice_buffer_corrupt_bytes_total, sluice_file_lost_bytes_total)\n", byteSize(c.LostBytes))
		}
		if c.DeadLetteredLogs > 0 {
			fmt.Fprintf(w, "  %.0f logs rejected by the server kept in the dead-letter directory\n", c.DeadLetteredLogs)
		}
	}
	if st.DirError != "" {
		fmt.Fprintf(w, "config dir error: %s\n", st.DirError)
	}
	if len(st.Configs) == 0 {
		fmt.Fprintln(w, "no configs")
	}
	failed := 0
	for _, c := range st.Configs {
		fmt.Fprintf(w, "%-8s %s (%s, version %s, since %s)\n", c.State, c.Name, c.Path, c.Version, c.Since.Format(time.RFC3339))
		for _, warning := range c.Warnings {
			fmt.Fprintf(w, "         warning: %s\n", warning)
		}
		if c.Message != "" {
			failed++
			for _, line := range strings.Split(c.Message, "\n") {
				fmt.Fprintf(w, "         %s\n", line)
			}
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "%d config(s) failed; the others keep collecting\n", failed)
	}
}

// writeBufferStatus writes a line for a disk buffer that holds data or
// cannot take more; nothing for an idle one.
func writeBufferStatus(w io.Writer, b supervisor.BufferStatus) {
	switch b.State {
	case supervisor.BufferUnwritable:
		cause := "write errors"
		if b.NoSpaceErrors > 0 {
			cause = "no space left on the device"
		}
		since := ""
		if b.WriteFailingSince != nil {
			since = " since " + b.WriteFailingSince.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  disk buffer %s: CANNOT BE WRITTEN%s (%s; %.0f failed writes): %s waiting for the server; new data waits in memory and the inputs are paused (their files keep the data) until space is freed or the server takes the buffered data\n",
			b.Dir, since, cause, b.NoSpaceErrors+b.IOErrors, byteSize(b.PendingBytes))
	case supervisor.BufferFull:
		fmt.Fprintf(w, "  disk buffer %s: FULL (buffer_file_num files in use): %s waiting for the server; inputs paused until it takes data\n", b.Dir, byteSize(b.PendingBytes))
	default:
		if b.PendingBytes > 0 {
			fmt.Fprintf(w, "  disk buffer %s: %s waiting for the server in %.0f files\n", b.Dir, byteSize(b.PendingBytes), b.Files)
		}
	}
}

func byteSize(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
