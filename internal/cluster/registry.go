package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryOptions configure a registry started with StartRegistry.
type RegistryOptions struct {
	// Dir holds the registry's storage (Dir/storage), its config and its log
	// (Dir/logs/registry.log). Required; created if missing.
	Dir string
	// Addr is the 127.0.0.1:port to listen on; empty picks a free port.
	Addr string
	// HtpasswdFile, when set, turns on HTTP basic auth with the users of this
	// htpasswd file (bcrypt entries; see WriteHtpasswd).
	HtpasswdFile string
	// ToolsDir is the directory holding the `registry` binary; empty means
	// $WASILET_TOOLS_DIR.
	ToolsDir string
	// Detach lets the registry outlive this process. By default it is killed
	// when this process dies, which is what tests want.
	Detach bool
	// ReadyTimeout bounds the wait for the registry to serve (default 60 s).
	ReadyTimeout time.Duration
}

// Registry is a running OCI registry (distribution v3) on loopback.
type Registry struct {
	// Addr is host:port, e.g. "127.0.0.1:41234"; image references are
	// Addr + "/repo:tag" over plain HTTP.
	Addr string
	// Dir is the directory given in RegistryOptions.
	Dir string
	// LogPath is the registry's log file.
	LogPath string

	p *proc
}

// StartRegistry starts a registry and waits until it serves /v2/. Stop it
// with Stop.
func StartRegistry(ctx context.Context, o RegistryOptions) (*Registry, error) {
	if o.Dir == "" {
		return nil, errors.New("start registry: RegistryOptions.Dir is required")
	}
	tools, err := toolsDir(o.ToolsDir)
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	addr := o.Addr
	if addr == "" {
		port, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("start registry: %w", err)
		}
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	c, err := registryComponent(tools, o.Dir, addr, o.HtpasswdFile)
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	p, err := c.start(startOptions{
		logDir:        filepath.Join(o.Dir, "logs"),
		runDir:        filepath.Join(o.Dir, "run"),
		dieWithParent: !o.Detach,
	})
	if err != nil {
		return nil, err
	}
	timeout := o.ReadyTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := p.waitReady(wctx); err != nil {
		_ = p.kill()
		return nil, err
	}
	return &Registry{Addr: addr, Dir: o.Dir, LogPath: p.logPath, p: p}, nil
}

// Stop stops the registry (SIGTERM, then SIGKILL) and waits until it is gone.
// Its storage stays in Dir.
func (r *Registry) Stop() error {
	if r == nil || r.p == nil {
		return nil
	}
	if err := r.p.kill(); err != nil {
		return err
	}
	_ = os.Remove(r.p.pidPath)
	return nil
}

// registryComponent writes the registry's config under dir and describes the
// process serving it on addr.
func registryComponent(tools, dir, addr, htpasswd string) (*component, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("registry address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("registry address %q: bad port", addr)
	}
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "version: 0.1\nlog:\n  level: info\n  formatter: text\n")
	fmt.Fprintf(&cfg, "storage:\n  filesystem:\n    rootdirectory: %q\n  delete:\n    enabled: true\n", storage)
	fmt.Fprintf(&cfg, "http:\n  addr: %q\n  secret: %q\n", addr, hex.EncodeToString(secret))
	if htpasswd != "" {
		abs, err := filepath.Abs(htpasswd)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("registry htpasswd file: %w", err)
		}
		fmt.Fprintf(&cfg, "auth:\n  htpasswd:\n    realm: wasilet\n    path: %q\n", abs)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	url := "http://" + addr + "/v2/"
	c := &component{
		name: "registry",
		bin:  filepath.Join(tools, "registry"),
		args: []string{"serve", cfgPath},
		// distribution v3 exports OpenTelemetry data by default; nothing
		// collects it here.
		env: []string{"OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none"},
		ready: func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		},
	}
	if host == "127.0.0.1" || host == "localhost" {
		c.ports = []int{port}
	}
	return c, nil
}

// WriteHtpasswd writes an htpasswd file (bcrypt, as the registry requires)
// with the given user → password entries.
func WriteHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		if u == "" || strings.ContainsAny(u, ":\n") {
			return fmt.Errorf("htpasswd: bad user name %q", u)
		}
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.DefaultCost)
		if err != nil {
			return fmt.Errorf("htpasswd: hash password of %s: %w", u, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// FreePort returns a TCP port that is free on 127.0.0.1 right now.
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts returns n distinct TCP ports free on 127.0.0.1 right now (all
// held open together while choosing, so they differ).
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ToolsDirEnv is the environment variable naming the directory of pinned
// binaries (hack/tools.sh --dir).
const ToolsDirEnv = "WASILET_TOOLS_DIR"

// toolsDir resolves the tools directory: dir if set, else $WASILET_TOOLS_DIR.
func toolsDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(ToolsDirEnv)
	}
	if dir == "" {
		return "", fmt.Errorf("no tools directory: set %s (export %s=$(hack/tools.sh --dir), after `./just tools`)", ToolsDirEnv, ToolsDirEnv)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("tools directory %s does not exist (run `./just tools`)", abs)
	}
	return abs, nil
}
