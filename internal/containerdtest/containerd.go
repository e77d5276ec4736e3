package containerdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/nodetest"
)

// Binaries the baseline needs in the tools directory.
var Tools = []string{"containerd", "containerd-shim-runc-v2", "runc", "registry"}

// Options configure Start.
type Options struct {
	// ToolsDir holds containerd, containerd-shim-runc-v2, runc (and registry
	// when RegistryAddr is empty); empty means $WASILET_TOOLS_DIR.
	ToolsDir string
	// RegistryAddr is the 127.0.0.1:port of a plain-HTTP registry to push
	// the images to and pull them from (e.g. clustertest.Env.RegistryAddr).
	// Empty starts a registry of this Containerd's own.
	RegistryAddr string
	// StartTimeout bounds containerd's start (default 60 s).
	StartTimeout time.Duration
	// ExtraPath are directories put first in containerd's PATH, where it
	// finds shims of other runtimes (containerd-shim-<name>-<version>).
	ExtraPath []string
	// Env is added to containerd's environment, which its shims inherit.
	Env []string
	// Runtimes are extra CRI runtime handlers: handler name → runtime_type
	// (e.g. "wasilet" → "io.containerd.wasilet.v1"). Their shim binaries
	// found in ExtraPath are treated as this containerd's shims (killed if
	// left behind at the end).
	Runtimes map[string]string
}

// Containerd is a running private containerd with the CRI plugin.
type Containerd struct {
	Dir          string // everything of this instance: root, state, config, logs
	Socket       string // containerd's gRPC socket (CRI included)
	LogPath      string // containerd's log
	RegistryAddr string // where the images are

	ContainerdVersion string // as the CRI reports it, e.g. "v2.4.2"
	RuncVersion       string // as `runc --version` says, e.g. "1.5.3"
	// Snapshotter is "overlayfs", or "native" when overlay mounts fail
	// here; SnapshotterNote then says why.
	Snapshotter     string
	SnapshotterNote string
	// Notes are the ways this instance differs from a stock node's
	// containerd, because of this machine (for the benchmark's method).
	Notes []string

	// Runtime and Images are CRI clients on Socket.
	Runtime runtimeapi.RuntimeServiceClient
	Images  runtimeapi.ImageServiceClient

	canLowerOOMScore bool
	runcSeccomp      bool
	pauseImage       string
	helloImage       string
	cgroup           string   // cgroup parent of every pod (cgroupfs path)
	shimPath         string   // resolved path of the shim binary (to find its processes)
	extraShims       []string // resolved paths of the shims of Options.Runtimes
	extraPath        []string
	env              []string
	runtimes         map[string]string
	cmd              *exec.Cmd
	exited           chan struct{}
	conn             *grpc.ClientConn
	registry         *cluster.Registry
	tools            string
}

// BaselineName names the baseline in benchmark records.
func (c *Containerd) BaselineName() string {
	return fmt.Sprintf("containerd %s + runc %s via CRI", c.ContainerdVersion, c.RuncVersion)
}

// Versions are the baseline's components and versions, for
// benchreport.Result.Versions.
func (c *Containerd) Versions() map[string]string {
	return map[string]string{"containerd": c.ContainerdVersion, "runc": c.RuncVersion, "snapshotter": c.Snapshotter}
}

// PauseImage is the reference of the sandbox image (pulled at Start).
func (c *Containerd) PauseImage() string { return c.pauseImage }

// HelloImage is the reference of the hello image (args: "exit" or "sleep").
func (c *Containerd) HelloImage() string { return c.helloImage }

// Start runs a private containerd for the test and stops it, with every pod
// it runs, when the test ends. It skips the test, saying exactly why, when
// containerd cannot run here, and fails it on any other error.
func Start(tb testing.TB, o Options) *Containerd {
	tb.Helper()
	c, err := TryStart(tb, o)
	var u *UnavailableError
	switch {
	case errors.As(err, &u):
		tb.Skip(u.Error())
	case err != nil:
		tb.Fatal(err)
	}
	return c
}

// TryStart is Start for a caller that measures something else too (wasilet)
// and records the baseline's absence instead of skipping: it returns an
// *UnavailableError when containerd cannot run here, another error when the
// harness fails. Cleanup is registered on tb either way.
func TryStart(tb testing.TB, o Options) (*Containerd, error) {
	tb.Helper()
	if reason := Unavailable(o.ToolsDir); reason != "" {
		return nil, &UnavailableError{Reason: strings.TrimPrefix(reason, unavailablePrefix)}
	}
	return start(tb, o)
}

// UnavailableError says why the baseline cannot run on this machine (as
// opposed to a failure of the harness); its message is what a benchmark
// records as benchreport.Result.NoBaseline.
type UnavailableError struct{ Reason string }

const unavailablePrefix = "containerd baseline unavailable: "

func (e *UnavailableError) Error() string { return unavailablePrefix + e.Reason }

func unavailable(reason string) error { return &UnavailableError{Reason: reason} }

// Unavailable says why the baseline cannot run here ("" when it may): not
// root, or the tools missing.
func Unavailable(toolsDir string) string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf(unavailablePrefix+"containerd and runc need root (running as uid %d)", os.Geteuid())
	}
	if _, err := toolsPath(toolsDir); err != nil {
		return unavailablePrefix + err.Error()
	}
	return ""
}

func toolsPath(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(cluster.ToolsDirEnv)
	}
	if dir == "" {
		return "", fmt.Errorf("%s is not set (export %s=$(hack/tools.sh --dir))", cluster.ToolsDirEnv, cluster.ToolsDirEnv)
	}
	var missing []string
	for _, n := range Tools {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.IsDir() {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%s missing in %s (run hack/tools.sh containerd runc registry)", strings.Join(missing, ", "), dir)
	}
	return dir, nil
}

func start(tb testing.TB, o Options) (*Containerd, error) {
	tools, err := toolsPath(o.ToolsDir)
	if err != nil {
		return nil, unavailable(err.Error())
	}
	// Short: the shim socket directory must stay within 38 bytes and the
	// sockets under it within the unix socket path limit.
	dir, err := os.MkdirTemp("/tmp", "ctd-")
	if err != nil {
		return nil, fmt.Errorf("containerd baseline: %w", err)
	}
	c := &Containerd{
		Dir:     dir,
		Socket:  filepath.Join(dir, "c.sock"),
		LogPath: filepath.Join(dir, "containerd.log"),
		tools:   tools,
		cgroup:  "/" + filepath.Base(dir),

		extraPath: o.ExtraPath,
		env:       o.Env,
		runtimes:  o.Runtimes,
	}
	tb.Cleanup(func() { c.stop(tb) })

	if c.shimPath, err = filepath.EvalSymlinks(filepath.Join(tools, "containerd-shim-runc-v2")); err != nil {
		return nil, fmt.Errorf("containerd baseline: %w", err)
	}
	for _, rt := range o.Runtimes {
		if p, err := exec.LookPath(filepath.Join(firstWith(o.ExtraPath, shimBinary(rt)), shimBinary(rt))); err == nil {
			if p, err = filepath.EvalSymlinks(p); err == nil {
				c.extraShims = append(c.extraShims, p)
			}
		}
	}
	out, err := exec.Command(filepath.Join(tools, "runc"), "--version").CombinedOutput()
	if err != nil {
		return nil, unavailable(fmt.Sprintf("runc --version: %v: %s", err, bytes.TrimSpace(out)))
	}
	c.RuncVersion = strings.TrimPrefix(strings.Fields(string(out) + " ? ? ?")[2], "v")
	if c.runcSeccomp = runcHasSeccomp(filepath.Join(tools, "runc")); !c.runcSeccomp {
		c.Notes = append(c.Notes, "runc built without seccomp (no libseccomp-dev when hack/tools.sh built it): pod sandboxes run unconfined instead of the RuntimeDefault profile the kubelet asks for")
	}

	if c.canLowerOOMScore = hasCap(capSysResource); !c.canLowerOOMScore {
		c.Notes = append(c.Notes, "no CAP_SYS_RESOURCE here: restrict_oom_score_adj=true (the pause process keeps oom_score_adj 0 instead of -998)")
	}
	c.Snapshotter = "overlayfs"
	if err := probeOverlay(filepath.Join(dir, "probe")); err != nil {
		c.Snapshotter = "native"
		c.SnapshotterNote = "overlay mount failed here (" + err.Error() + "): using the native snapshotter (full copies)"
		c.Notes = append(c.Notes, c.SnapshotterNote)
	}
	for _, n := range c.Notes {
		tb.Logf("containerd baseline: %s", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), orDefault(o.StartTimeout, 60*time.Second))
	defer cancel()

	c.RegistryAddr = o.RegistryAddr
	if c.RegistryAddr == "" {
		r, err := cluster.StartRegistry(ctx, cluster.RegistryOptions{Dir: filepath.Join(dir, "registry"), ToolsDir: tools})
		if err != nil {
			return nil, fmt.Errorf("containerd baseline: %w", err)
		}
		c.registry = r
		c.RegistryAddr = r.Addr
	}
	if c.pauseImage, c.helloImage, err = pushImages(ctx, c.RegistryAddr); err != nil {
		return nil, fmt.Errorf("containerd baseline: %w", err)
	}

	if err := c.writeConfig(); err != nil {
		return nil, fmt.Errorf("containerd baseline: %w", err)
	}
	if err := c.launch(); err != nil {
		return nil, err
	}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	// A node has its pause image before it runs pods.
	if _, err := c.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: c.pauseImage}}); err != nil {
		return nil, fmt.Errorf("containerd baseline: pull the pause image %s: %w", c.pauseImage, err)
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// runcHasSeccomp says whether `runc features` reports seccomp support.
func runcHasSeccomp(runc string) bool {
	out, err := exec.Command(runc, "features").Output()
	if err != nil {
		return false
	}
	var f struct {
		Linux struct {
			Seccomp *struct {
				Enabled *bool `json:"enabled"`
			} `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(out, &f); err != nil {
		return false
	}
	return f.Linux.Seccomp != nil && f.Linux.Seccomp.Enabled != nil && *f.Linux.Seccomp.Enabled
}

// capSysResource is CAP_SYS_RESOURCE's bit in the capability sets.
const capSysResource = 24

// hasCap says whether this process has the capability in its effective set.
func hasCap(bit uint) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<bit) != 0
		}
	}
	return false
}

// probeOverlay mounts an overlay with two lower directories (as the
// overlayfs snapshotter does) under dir, then removes it all.
func probeOverlay(dir string) error {
	defer os.RemoveAll(dir)
	var paths []string
	for _, d := range []string{"l1", "l2", "u", "w", "m"} {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		paths = append(paths, p)
	}
	opts := fmt.Sprintf("lowerdir=%s:%s,upperdir=%s,workdir=%s", paths[1], paths[0], paths[2], paths[3])
	if err := syscall.Mount("overlay", paths[4], "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount -t overlay: %w", err)
	}
	if err := syscall.Unmount(paths[4], 0); err != nil {
		return fmt.Errorf("unmount the overlay probe: %w", err)
	}
	return nil
}

// writeConfig writes config.toml (config version 4, the native format of
// containerd 2.4; version 3 files are migrated to it on load) and the
// registry's hosts.toml.
func (c *Containerd) writeConfig() error {
	hostsDir := filepath.Join(c.Dir, "certs.d", c.RegistryAddr)
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		return err
	}
	hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+c.RegistryAddr, "http://"+c.RegistryAddr)
	if err := os.WriteFile(filepath.Join(hostsDir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(c.Dir, name) }
	var b strings.Builder
	fmt.Fprintf(&b, "version = 4\nroot = %q\nstate = %q\nimports = []\n", p("root"), p("state"))
	// NRI would listen on a host-wide socket; opt installs into /opt.
	b.WriteString("disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.internal.v1.opt']\n\n")
	fmt.Fprintf(&b, "[plugins.'io.containerd.server.v1.grpc']\n  address = %q\n", c.Socket)
	fmt.Fprintf(&b, "[plugins.'io.containerd.server.v1.ttrpc']\n  address = %q\n", c.Socket+".ttrpc")
	fmt.Fprintf(&b, "[plugins.'io.containerd.shim.v1.manager']\n  socket_dir = %q\n", p("s"))
	fmt.Fprintf(&b, "[plugins.'io.containerd.transfer.v1.local']\n  config_path = %q\n", p("certs.d"))
	fmt.Fprintf(&b, "[plugins.'io.containerd.cri.v1.images']\n  snapshotter = %q\n", c.Snapshotter)
	fmt.Fprintf(&b, "[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = %q\n", c.pauseImage)
	fmt.Fprintf(&b, "[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = %q\n", p("certs.d"))
	if !c.canLowerOOMScore {
		// Without CAP_SYS_RESOURCE runc cannot give the pause process the
		// -998 the CRI asks for; this clamps it at containerd's own score.
		b.WriteString("[plugins.'io.containerd.cri.v1.runtime']\n  restrict_oom_score_adj = true\n")
	}
	// Host-network pods only: no CNI plugin runs; the directories exist and
	// stay empty.
	fmt.Fprintf(&b, "[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dirs = [%q]\n  conf_dir = %q\n", p("cni/bin"), p("cni/net.d"))
	b.WriteString("[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = 'runc'\n")
	b.WriteString("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n  runtime_type = 'io.containerd.runc.v2'\n")
	fmt.Fprintf(&b, "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  BinaryName = %q\n  Root = %q\n  SystemdCgroup = false\n",
		filepath.Join(c.tools, "runc"), p("runc"))
	names := make([]string, 0, len(c.runtimes))
	for n := range c.runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.%s]\n  runtime_type = %q\n", n, c.runtimes[n])
	}
	for _, d := range []string{"cni/bin", "cni/net.d"} {
		if err := os.MkdirAll(p(d), 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(p("config.toml"), []byte(b.String()), 0o644)
}

// launch starts containerd (killed if this process dies first).
func (c *Containerd) launch() error {
	logf, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("containerd baseline: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(c.tools, "containerd"), "--config", filepath.Join(c.Dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// The shims find runc and themselves through PATH.
	path := strings.Join(append(slices.Clone(c.extraPath), c.tools, os.Getenv("PATH")), ":")
	cmd.Env = append(append(os.Environ(), c.env...), "PATH="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return unavailable(fmt.Sprintf("start containerd: %v", err))
	}
	c.cmd = cmd
	c.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(c.exited) }()
	return nil
}

// connect waits until the CRI answers and says the runtime is ready.
func (c *Containerd) connect(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+c.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("containerd baseline: CRI client: %w", err)
	}
	c.conn = conn
	c.Runtime = runtimeapi.NewRuntimeServiceClient(conn)
	c.Images = runtimeapi.NewImageServiceClient(conn)
	var last error
	for {
		select {
		case <-c.exited:
			return unavailable(fmt.Sprintf("containerd exited at start (%v); its log ends with:\n%s", c.cmd.ProcessState, c.logTail(20)))
		default:
		}
		if _, err := os.Stat(c.Socket); err == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			last = c.ready(cctx)
			cancel()
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = fmt.Errorf("no socket %s", c.Socket)
			}
			return unavailable(fmt.Sprintf("containerd's CRI not ready: %v; its log ends with:\n%s", last, c.logTail(20)))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Containerd) ready(ctx context.Context) error {
	v, err := c.Runtime.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return err
	}
	st, err := c.Runtime.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return err
	}
	for _, cond := range st.GetStatus().GetConditions() {
		if cond.GetType() == runtimeapi.RuntimeReady && !cond.GetStatus() {
			return fmt.Errorf("RuntimeReady false: %s: %s", cond.GetReason(), cond.GetMessage())
		}
	}
	c.ContainerdVersion = v.GetRuntimeVersion()
	return nil
}

// logTail is the last n lines of containerd's log.
func (c *Containerd) logTail(n int) string { return fileTail(c.LogPath, n) }

// fileTail is the last n lines of a log file ("" if unreadable).
func fileTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	return nodetest.Tail(string(b), n)
}

// stop removes every pod, stops containerd, kills what is left of its shims
// and containers, unmounts what is left under Dir, removes the pods'
// cgroups and Dir.
func (c *Containerd) stop(tb testing.TB) {
	if c.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := c.RemoveAllPods(ctx); err != nil {
			tb.Errorf("containerd baseline: remove pods: %v", err)
		}
		cancel()
		_ = c.conn.Close()
	}
	if c.cmd != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
	if tb.Failed() && c.cmd != nil {
		tb.Logf("containerd log (%s), last lines:\n%s", c.LogPath, c.logTail(40))
	}
	// Shims exit on their own once their pods are gone; give them a moment.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if t := c.processes(); len(t.shims)+len(t.containers) == 0 {
			break
		}
	}
	if n := c.killLeftovers(); n > 0 {
		tb.Logf("containerd baseline: killed %d leftover processes (shims or containers)", n)
	}
	if c.registry != nil {
		if err := c.registry.Stop(); err != nil {
			tb.Errorf("containerd baseline: stop registry: %v", err)
		}
	}
	if n, err := unmountUnder(c.Dir); err != nil {
		tb.Errorf("containerd baseline: %v", err)
	} else if n > 0 {
		tb.Logf("containerd baseline: unmounted %d leftover mounts under %s", n, c.Dir)
	}
	removeCgroups(c.cgroup)
	if err := os.RemoveAll(c.Dir); err != nil {
		tb.Errorf("containerd baseline: %v", err)
	}
}

// shimBinary is containerd's binary name for a runtime type:
// io.containerd.<name>.<version> → containerd-shim-<name>-<version>.
func shimBinary(runtimeType string) string {
	parts := strings.Split(runtimeType, ".")
	if len(parts) < 2 {
		return "containerd-shim-" + runtimeType
	}
	return "containerd-shim-" + parts[len(parts)-2] + "-" + parts[len(parts)-1]
}

// firstWith is the first of dirs holding name ("" when none does).
func firstWith(dirs []string, name string) string {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return d
		}
	}
	return ""
}
