package node_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wasilet/wasilet/internal/nodetest"
)

// What the node writes is its own: the data directory, its keys and
// kubeconfig are closed to other users, and no socket it serves (device
// plugins, PodResources, CRI) can be connected to by another user — a unix
// socket needs write permission to connect.
func TestE2EFilePermissions(t *testing.T) {
	n := nodetest.Shared(t)
	check := func(path string, deny os.FileMode, what string) {
		t.Helper()
		fi, err := os.Lstat(path)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if perm := fi.Mode().Perm(); perm&deny != 0 {
			t.Errorf("%s %s has mode %04o: %04o must be clear", what, path, perm, deny)
		}
	}
	check(n.DataDir, 0o022, "data directory")
	check(filepath.Join(n.DataDir, "pki"), 0o077, "certificate directory")
	check(filepath.Join(n.DataDir, "kubeconfig"), 0o077, "kubeconfig (client key inside)")
	keys, _ := filepath.Glob(filepath.Join(n.DataDir, "pki", "*.pem"))
	found := 0
	for _, k := range keys {
		if fi, err := os.Lstat(k); err == nil && fi.Mode().IsRegular() {
			check(k, 0o077, "certificate and key")
			found++
		}
	}
	if found == 0 {
		t.Errorf("no key files under %s", filepath.Join(n.DataDir, "pki"))
	}
	for _, s := range []string{"device-plugins/kubelet.sock", "pod-resources/kubelet.sock", "cri.sock"} {
		check(filepath.Join(n.DataDir, s), 0o022, "socket")
	}
	check(filepath.Join(n.DataDir, "device-plugins"), 0o002, "device-plugin directory")
	check(filepath.Join(n.DataDir, "pods"), 0o007, "pod directory")
}
