package agent

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasilet/wasilet/internal/grpcsock"
)

// TestSocketNameFits: a plugin socket keeps Akri's <name>-<unixSecs>.sock
// when it fits a unix socket path, and is cut with a hash of the whole name
// when the Instance name and the directory together are too long — distinct
// for two names sharing their first characters.
func TestSocketNameFits(t *testing.T) {
	now := time.Unix(1796211108, 0)
	short := newPluginServer("/var/lib/kubelet/device-plugins", "akri-debug-echo-component-8120fe", nil, slog.Default())
	if got := short.socketName(now); got != "akri-debug-echo-component-8120fe-1796211108.sock" {
		t.Errorf("short path: %s", got)
	}
	dir := "/work/some-checkout/.state/nodes/wasilet-demo/data/device-plugins"
	seen := map[string]bool{}
	for _, name := range []string{"akri-debug-echo-component-8120fe", "akri-debug-echo-component-ab76e6", strings.Repeat("x", 200)} {
		got := newPluginServer(dir, name, nil, slog.Default()).socketName(now)
		if p := filepath.Join(dir, got); len(p) > grpcsock.MaxPathLen {
			t.Errorf("%s: %d bytes", p, len(p))
		}
		if !strings.HasSuffix(got, "-1796211108.sock") || seen[got] {
			t.Errorf("%s: %s", name, got)
		}
		seen[got] = true
	}
}
