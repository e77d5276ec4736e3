package devicemanager

import (
	"os"
	"testing"
	"time"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/wasilet/wasilet/internal/devicemanager/plugintest"
)

// newPlugin returns a test plugin stopped at the end of the test.
func newPlugin(t *testing.T, dir, resource, sock string, opts *pluginapi.DevicePluginOptions, ids ...string) *plugintest.Plugin {
	p := plugintest.New(dir, resource, sock, opts, ids...)
	t.Cleanup(p.Stop)
	return p
}

func start(t *testing.T, p *plugintest.Plugin) {
	t.Helper()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
}

// shortDir returns a temporary directory with a short path (unix socket
// paths are limited to 107 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "dm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}
