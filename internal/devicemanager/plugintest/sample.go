package plugintest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SampleResource is what the upstream sample-device-plugin advertises: two
// healthy devices, Dev-1 and Dev-2; Allocate mounts the file /tmp/<id> (it
// creates it) at the same path in the container.
const SampleResource = "example.com/resource"

// SampleCommand returns the command running the upstream
// sample-device-plugin binary against the device-plugin directory dir.
//
// The plugin always registers on /var/lib/kubelet/device-plugins/kubelet.sock
// and watches that directory for the kubelet's restart (only its own socket
// directory is configurable, through PLUGIN_SOCK_DIR), so the command runs it
// in a private mount namespace (unshare, needs root) where a tmpfs covers
// /var/lib and dir is bind-mounted at /var/lib/kubelet/device-plugins: the
// host is untouched and the plugin talks to the manager serving dir. The
// plugin's process is the command's (exec), so SIGTERM stops it cleanly.
func SampleCommand(bin, dir string) (*exec.Cmd, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("running the sample device plugin needs root (a private mount namespace maps /var/lib/kubelet/device-plugins to the test directory)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, errors.New("unshare (util-linux) is needed to run the sample device plugin: " + err.Error())
	}
	script := `set -e
mount -t tmpfs wasilet-test /var/lib
mkdir -p /var/lib/kubelet/device-plugins
mount --bind "$DP_DIR" /var/lib/kubelet/device-plugins
exec "$DP_BIN"`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(),
		"DP_DIR="+dir,
		"DP_BIN="+bin,
		"PLUGIN_SOCK_DIR=/var/lib/kubelet/device-plugins")
	return cmd, nil
}

// StartSample runs the upstream sample-device-plugin binary bin against the
// device-plugin directory dir (see SampleCommand) until the test ends. At
// cleanup it gets SIGTERM (and is killed if it has not exited within 30 s);
// its output is logged if the test failed.
func StartSample(t testing.TB, bin, dir string) {
	t.Helper()
	cmd, err := SampleCommand(bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	// One comparable writer for both streams: exec copies them in one
	// goroutine, and out is read only after Wait.
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sample-device-plugin: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("sample-device-plugin output:\n%s", out.String())
		}
	})
}
