package logtail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Applet is a name Logtail images and manifests call, answered by the
// sluice-agent binary itself (a symbolic link to it, as busybox does).
type Applet struct {
	// Path is where the image puts the link.
	Path string
	// Usage is one line of help.
	Usage string
}

// Applets are the names the Logtail guides call in the agent container.
var Applets = []Applet{
	{"/bin/sh", "sh -c 'COMMAND': runs one simple command (the image has no shell)"},
	{"/usr/local/ilogtail/run_logtail.sh", "run_logtail.sh [STOP_DELAY_SECONDS] [run flags]: sluice-agent supervise"},
	{"/etc/init.d/ilogtaild", "ilogtaild start|stop|restart|status: control the supervised agent"},
	{"/bin/cat", "cat FILE…: print files (e.g. /usr/local/ilogtail/app_info.json)"},
}

// EnvHTTPListen is the agent's status address for every command of the
// image: sluice-agent run and supervise (--http-listen default), status,
// and ilogtaild.
const EnvHTTPListen = "SLUICE_HTTP_LISTEN"

// DefaultHTTPListen is the status address when neither a flag nor
// SLUICE_HTTP_LISTEN names one.
const DefaultHTTPListen = "127.0.0.1:7953"

// HTTPListen returns $SLUICE_HTTP_LISTEN or the default.
func HTTPListen(getenv func(string) string) string {
	if v := getenv(EnvHTTPListen); v != "" {
		return v
	}
	return DefaultHTTPListen
}

// IsApplet reports whether argv0 (a path or a name) is one of Applets.
func IsApplet(argv0 string) bool { return appletName(argv0) != "" }

func appletName(argv0 string) string {
	base := filepath.Base(argv0)
	for _, a := range Applets {
		if filepath.Base(a.Path) == base {
			return base
		}
	}
	return ""
}

// InstallLinks creates Applets' links to target under root, and
// AppInfoPath as a link to AppInfoTarget (so the agent can write it with a
// read-only root file system). The image's build stage calls it, so the
// list lives here only.
func InstallLinks(root, target string) error {
	links := map[string]string{AppInfoPath: AppInfoTarget}
	for _, a := range Applets {
		links[a.Path] = target
	}
	for path, to := range links {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(to, p); err != nil {
			return fmt.Errorf("link %s: %w", path, err)
		}
	}
	return nil
}

// RunApplet runs the applet args[0] names and returns its exit code.
func RunApplet(args []string, stdout, stderr io.Writer) int {
	name := appletName(args[0])
	switch name {
	case "sh":
		return runShell(args[1:], stderr)
	case "run_logtail.sh":
		return runLogtailScript(args[1:], stdout, stderr)
	case "ilogtaild":
		return runInitd(args[1:], os.Getenv, stdout, stderr)
	case "cat":
		return runCat(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "%s: not an applet of sluice-agent\n", args[0])
	return 127
}

// runShell is `sh -c COMMAND [NAME [ARG…]]`: the command replaces this
// process (exec), so a container's main process stays PID 1.
func runShell(args []string, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "-c" {
		fmt.Fprintf(stderr, "sh: this image has no shell; its sh only runs `sh -c 'COMMAND'`. For the agent's state run /sluice-agent status, or /etc/init.d/ilogtaild status\n")
		return 2
	}
	c, err := parseShell(args[1], os.Getenv, args[2:])
	if err != nil {
		fmt.Fprintf(stderr, "sh: %v; start the agent directly instead, e.g. command: [/usr/local/ilogtail/run_logtail.sh, \"10\"]\n", err)
		return 2
	}
	env := append(os.Environ(), c.assign...)
	path := c.argv[0]
	if IsApplet(path) {
		// The image's own names run from this binary even where the link
		// is absent (a test running the agent outside its image).
		if path, err = os.Executable(); err != nil {
			fmt.Fprintf(stderr, "sh: %v\n", err)
			return 126
		}
	} else if path, err = exec.LookPath(path); err != nil {
		fmt.Fprintf(stderr, "sh: %s: not found (the agent image carries sluice-agent and %s only)\n", c.argv[0], appletList())
		return 127
	}
	err = syscall.Exec(path, c.argv, env)
	fmt.Fprintf(stderr, "sh: exec %s: %v\n", c.argv[0], err)
	return 126
}

func appletList() string {
	var names []string
	for _, a := range Applets {
		names = append(names, a.Path)
	}
	return strings.Join(names, ", ")
}

// runLogtailScript is run_logtail.sh [SECONDS] [run flags]: the supervised
// agent with a stop delay of SECONDS (default 10).
func runLogtailScript(args []string, stdout, stderr io.Writer) int {
	delay := 10 * time.Second
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		d, err := parseDelaySeconds(args[0])
		if err != nil {
			fmt.Fprintf(stderr, "run_logtail.sh: %q: %v\n", args[0], err)
			return 2
		}
		delay, args = d, args[1:]
	}
	return RunSupervisor(append([]string{fmt.Sprintf("--stop-delay=%ds", int(delay/time.Second))}, args...), stdout, stderr)
}

// RunSupervisor is `sluice-agent supervise [--stop-delay D] [--http-listen
// ADDR] [--log-format F] [run flags]`: Supervise with the process's signals
// and environment; the other flags go to the child's run.
func RunSupervisor(args []string, stdout, stderr io.Writer) int {
	listen := HTTPListen(os.Getenv)
	delay := 10 * time.Second
	jsonLog := false
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "stop-delay" && name != "http-listen" && name != "log-format") {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				fmt.Fprintf(stderr, "sluice-agent supervise: %s needs a value\n", a)
				return 2
			}
			i++
			val = args[i]
		}
		switch name {
		case "stop-delay":
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				fmt.Fprintf(stderr, "sluice-agent supervise: --stop-delay %q: use a duration such as 10s\n", val)
				return 2
			}
			delay = d
		case "http-listen":
			listen = val
		case "log-format":
			jsonLog = val == "json"
			rest = append(rest, "--log-format="+val)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "sluice-agent supervise: %v\n", err)
		return 1
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if jsonLog {
		h = slog.NewJSONHandler(stderr, nil)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	return Supervise(context.Background(), SupervisorConfig{
		Exe: exe, Args: rest, Env: os.Environ(), Listen: listen, StopDelay: delay,
		Signals: sigs, Stdout: stdout, Stderr: stderr,
		Logger: slog.New(h).With("component", "supervisor"),
	})
}

// runInitd is /etc/init.d/ilogtaild: Logtail's service script, talking to
// the supervisor (run_logtail.sh) over the agent's status address.
func runInitd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	addr := loopback(HTTPListen(getenv))
	if len(args) == 2 && strings.HasPrefix(args[1], "--addr=") {
		addr, args = strings.TrimPrefix(args[1], "--addr="), args[:1]
	}
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: /etc/init.d/ilogtaild start|stop|restart|status")
		return 2
	}
	switch args[0] {
	case "status":
		if err := checkHealthy(addr); err != nil {
			fmt.Fprintf(stdout, "ilogtail is not running: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, "ilogtail is running")
		return 0
	case "stop":
		return control(addr, pathStop, stdout, stderr)
	case "start":
		return control(addr, pathStart, stdout, stderr)
	case "restart":
		if code := control(addr, pathStop, stdout, stderr); code != 0 {
			return code
		}
		return control(addr, pathStart, stdout, stderr)
	}
	fmt.Fprintf(stderr, "ilogtaild: unknown command %q: use start, stop, restart or status\n", args[0])
	return 2
}

// loopback turns a listen address (0.0.0.0:7953, :7953) into one to dial.
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func checkHealthy(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("nothing answers at %s (%v)", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return errors.New(strings.TrimSpace(string(body)))
	}
	return nil
}

func control(addr, path string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, nil)
	if err != nil {
		fmt.Fprintln(stderr, "ilogtaild:", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "ilogtaild: nothing answers at %s: %v\n", addr, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusOK:
		fmt.Fprint(stdout, string(body))
		return 0
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		fmt.Fprintf(stderr, "ilogtaild: the agent at %s was not started by run_logtail.sh (sluice-agent supervise), so it cannot be stopped and started in place: restart the pod, or start the agent with run_logtail.sh\n", addr)
	default:
		fmt.Fprintf(stderr, "ilogtaild: %s\n", strings.TrimSpace(string(body)))
	}
	return 1
}

// runCat prints files: enough for `cat /usr/local/ilogtail/app_info.json`.
func runCat(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"-"}
	}
	code := 0
	for _, p := range args {
		var r io.ReadCloser = os.Stdin
		if p != "-" {
			f, err := os.Open(p)
			if err != nil {
				fmt.Fprintf(stderr, "cat: %v\n", err)
				code = 1
				continue
			}
			r = f
		}
		if _, err := io.Copy(stdout, r); err != nil {
			fmt.Fprintf(stderr, "cat: %s: %v\n", p, err)
			code = 1
		}
		if p != "-" {
			_ = r.Close()
		}
	}
	return code
}
