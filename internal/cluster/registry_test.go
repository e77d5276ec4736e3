package cluster_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/clustertest"
)

// A standalone registry with basic auth: anonymous access is refused, oras
// pushes and pulls an artifact with the credentials, Stop frees the port.
func TestStartRegistryWithAuth(t *testing.T) {
	tools := clustertest.RequireTools(t, "registry", "oras")
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := cluster.WriteHtpasswd(htpasswd, map[string]string{"alice": "s3cret"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := cluster.StartRegistry(ctx, cluster.RegistryOptions{Dir: filepath.Join(dir, "reg"), HtpasswdFile: htpasswd, ToolsDir: tools})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = reg.Stop()
		}
	})

	resp, err := http.Get("http://" + reg.Addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous GET /v2/: %s, want 401", resp.Status)
	}

	src := t.TempDir()
	payload := []byte("hello from wasilet\n")
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := reg.Addr + "/test/hello:v1"
	oras := filepath.Join(tools, "oras")
	run := func(wd string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, oras, args...)
		cmd.Dir = wd
		cmd.Env = append(os.Environ(), "HOME="+dir) // no credential store of the user
		return cmd.CombinedOutput()
	}
	if out, err := run(src, "push", "--plain-http", ref, "hello.txt"); err == nil {
		t.Fatalf("push without credentials succeeded:\n%s", out)
	}
	if out, err := run(src, "push", "--plain-http", "-u", "alice", "-p", "s3cret", ref, "hello.txt"); err != nil {
		t.Fatalf("oras push: %v\n%s", err, out)
	}
	dst := t.TempDir()
	if out, err := run(dst, "pull", "--plain-http", "-u", "alice", "-p", "s3cret", ref); err != nil {
		t.Fatalf("oras pull: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dst, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("pulled %q, pushed %q", got, payload)
	}

	if err := reg.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	clustertest.RequirePortClosed(t, reg.Addr)
}
