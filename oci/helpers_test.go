package oci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/cluster"
)

// toolPath returns a pinned binary from $WASILET_TOOLS_DIR. Without it the
// test fails (or skips under -short, where end-to-end tests do not run).
func toolPath(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: skipping a test that needs the %s binary", name)
	}
	dir := os.Getenv("WASILET_TOOLS_DIR")
	if dir == "" {
		t.Fatalf("WASILET_TOOLS_DIR is not set: it must name the directory of pinned tools (run `hack/tools.sh --dir`)")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found in WASILET_TOOLS_DIR=%s: %v (run `hack/tools.sh %s`)", name, dir, err, name)
	}
	return p
}

// registryOptions configure a test registry.
type registryOptions struct {
	// User and Password, if set, turn on htpasswd basic auth.
	User, Password string
}

// startRegistry runs the pinned distribution registry (through
// internal/cluster's launcher) on a free loopback port with storage in a
// temporary directory and returns its host:port. It is stopped when the test
// ends.
func startRegistry(t testing.TB, opts registryOptions) string {
	t.Helper()
	toolPath(t, "registry") // fail (or skip under -short) with the tools message
	dir := t.TempDir()
	ro := cluster.RegistryOptions{Dir: dir}
	if opts.User != "" {
		ro.HtpasswdFile = filepath.Join(dir, "htpasswd")
		if err := cluster.WriteHtpasswd(ro.HtpasswdFile, map[string]string{opts.User: opts.Password}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	reg, err := cluster.StartRegistry(ctx, ro)
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() {
		if err := reg.Stop(); err != nil {
			t.Errorf("stop registry: %v", err)
		}
	})
	return reg.Addr
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proxy is a reverse proxy in front of a registry that counts requests and
// can corrupt blob bodies.
type proxy struct {
	Addr string

	mu     sync.Mutex
	counts map[string]int // "METHOD kind digest-or-ref", kind blob|manifest
	// corrupt lists blob digests whose bodies get one byte flipped.
	corrupt map[string]bool
}

var v2Path = regexp.MustCompile(`^/v2/.+/(blobs|manifests)/([^/]+)$`)

func startProxy(t testing.TB, registry string) *proxy {
	t.Helper()
	p := &proxy{counts: map[string]int{}, corrupt: map[string]bool{}}
	target := &url.URL{Scheme: "http", Host: registry}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		m := v2Path.FindStringSubmatch(resp.Request.URL.Path)
		if m == nil || m[1] != "blobs" || resp.Request.Method != http.MethodGet || resp.StatusCode != http.StatusOK {
			return nil
		}
		p.mu.Lock()
		bad := p.corrupt[m[2]]
		p.mu.Unlock()
		if !bad {
			return nil
		}
		var body bytes.Buffer
		if _, err := body.ReadFrom(resp.Body); err != nil {
			return err
		}
		resp.Body.Close()
		b := body.Bytes()
		b[len(b)-1] ^= 0xff
		resp.Body = ioNopCloser(bytes.NewReader(b))
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := v2Path.FindStringSubmatch(r.URL.Path); m != nil {
			p.mu.Lock()
			p.counts[r.Method+" "+m[1]+" "+m[2]]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	p.Addr = l.Addr().String()
	return p
}

// count returns how many requests matched method and kind (blobs or
// manifests), for one digest/ref or for all if key is "".
func (p *proxy) count(method, kind, key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, c := range p.counts {
		parts := strings.SplitN(k, " ", 3)
		if parts[0] == method && parts[1] == kind && (key == "" || parts[2] == key) {
			n += c
		}
	}
	return n
}

func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
}

func (p *proxy) setCorrupt(digest string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.corrupt[digest] = true
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func ioNopCloser(r *bytes.Reader) nopCloser { return nopCloser{r} }

// wasmModule returns a valid core module with a custom section carrying tag,
// so different tags give different digests.
func wasmModule(tag string) []byte {
	return append([]byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}, customSection(tag)...)
}

// wasmComponent returns a component header with a custom section.
func wasmComponent(tag string) []byte {
	return append([]byte{0x00, 'a', 's', 'm', 0x0d, 0x00, 0x01, 0x00}, customSection(tag)...)
}

func customSection(tag string) []byte {
	name := "wasilet-test"
	payload := append([]byte{byte(len(name))}, name...)
	payload = append(payload, tag...)
	return append([]byte{0x00, byte(len(payload))}, payload...)
}

// writeFile writes b to dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// oras runs the pinned oras CLI in dir and returns its stdout.
func oras(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(toolPath(t, "oras"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, ".docker-none"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("oras %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// orasPushed is the part of `oras push --format json` the tests read.
type orasPushed struct {
	Reference string `json:"reference"`
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

func orasPushJSON(t testing.TB, dir string, args ...string) orasPushed {
	t.Helper()
	out := oras(t, dir, append([]string{"push", "--plain-http", "--format", "json"}, args...)...)
	var p orasPushed
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("decode oras push output %q: %v", out, err)
	}
	return p
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
