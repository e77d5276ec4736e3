package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	cshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"

	"github.com/wasilet/wasilet/internal/version"
)

// RuntimeType is the containerd runtime type this shim serves; containerd
// finds the binary BinaryName on its PATH for it.
const (
	RuntimeType = "io.containerd.wasilet.v1"
	BinaryName  = "containerd-shim-wasilet-v1"
)

// Annotations that decide which shim process serves a container: an
// explicit group (ctr run --annotation, or a pod annotation containerd's CRI
// passes on when its runtime lists it in pod_annotations), and the CRI's
// markers of a pod's containers.
const (
	GroupAnnotation      = RuntimeType + ".group"
	SandboxIDAnnotation  = "io.kubernetes.cri.sandbox-id"
	containerTypeSandbox = "sandbox"
	containerTypeKey     = "io.kubernetes.cri.container-type"
)

// GroupingEnv selects how CRI containers are grouped when they name no
// group: "node" (the default) serves every Wasm pod of the containerd
// namespace from one shim process, "pod" gives each pod its own (the runc
// shim's grouping: one pod's crash cannot end another's guests, at the cost
// of an engine per pod). containerd's environment is the shim's.
const (
	GroupingEnv  = "WASILET_SHIM_GROUPING"
	GroupingNode = "node"
	GroupingPod  = "pod"
)

// nodeGroup is the group of every CRI container under GroupingNode.
const nodeGroup = "wasilet-node"

// groupEnv tells the server process that it serves a shared group.
const groupEnv = "WASILET_SHIM_GROUP"

// NewManager returns// NewManager returns the shim manager (the `start` and `delete`
// subcommands and -info) for containerd's shim.RunShim.
func NewManager() cshim.Shim { return manager{} }

type manager struct{}

func (manager) Name() string { return RuntimeType }

// groupOf reads the bundle's config.json (the working directory of the
// start subcommand) and returns the group the container belongs to: its
// GroupAnnotation; else, for a container of a CRI pod, the node's group
// (or the pod's, under GroupingPod); else its own id, as ctr's containers
// get a shim each, like runc's.
func groupOf(bundle, id, grouping string) (string, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return "", err
	}
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return "", fmt.Errorf("parse %s: %w", filepath.Join(bundle, "config.json"), err)
	}
	if g := s.Annotations[GroupAnnotation]; g != "" {
		return g, nil
	}
	sandbox := s.Annotations[SandboxIDAnnotation]
	switch {
	case sandbox == "":
		return id, nil
	case grouping == GroupingPod:
		return sandbox, nil
	case grouping == "" || grouping == GroupingNode:
		return nodeGroup, nil
	default:
		return "", fmt.Errorf("%s=%q: want %q or %q", GroupingEnv, grouping, GroupingNode, GroupingPod)
	}
}

// Start is the `start` subcommand: it returns the address of the shim that
// serves the container, starting that shim unless the container's group
// already has one.
func (manager) Start(ctx context.Context, params *bootapi.BootstrapParams) (_ *bootapi.BootstrapResult, retErr error) {
	res := &bootapi.BootstrapResult{Version: 3, Protocol: "ttrpc"}
	id := params.GetInstanceID()
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	group, err := groupOf(cwd, id, os.Getenv(GroupingEnv))
	if err != nil {
		return nil, err
	}
	socketDir := params.GetSocketDir()
	if socketDir == "" {
		socketDir = filepath.Join(defaults.DefaultStateDir, "s")
	}
	addr, err := cshim.CreateSocketAddress(ctx, socketDir, params.GetContainerdGrpcAddress(), group, false)
	if err != nil {
		return nil, err
	}
	l, err := cshim.NewSocket(addr)
	if err != nil {
		if !cshim.SocketEaddrinuse(err) {
			return nil, fmt.Errorf("create shim socket: %w", err)
		}
		if cshim.CanConnect(addr) {
			// The group's shim runs: it serves this container too.
			res.Address = addr
			return res, nil
		}
		// A socket left by a shim that died.
		if err := cshim.RemoveSocket(addr); err != nil {
			return nil, fmt.Errorf("remove stale shim socket: %w", err)
		}
		if l, err = cshim.NewSocket(addr); err != nil {
			return nil, fmt.Errorf("create shim socket: %w", err)
		}
	}
	defer func() {
		if retErr != nil {
			_ = cshim.RemoveSocket(addr)
		}
	}()
	// The socket file stays for the server that inherits the listener.
	l.SetUnlinkOnClose(false)
	defer l.Close()
	f, err := l.File()
	if err != nil {
		return nil, err
	}
	defer f.Close()

	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-namespace", ns, "-id", id, "-address", params.GetContainerdGrpcAddress()}
	if params.GetLogLevel() <= bootapi.LogLevel_LOG_LEVEL_DEBUG {
		args = append(args, "-debug")
	}
	cmd := exec.Command(self, args...)
	cmd.Dir = cwd
	cmd.Env = os.Environ()
	if group != id {
		cmd.Env = append(cmd.Env, groupEnv+"=shared")
	}
	cmd.ExtraFiles = []*os.File{f} // fd 3: the listener the server serves
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait() }()
	if err := cshim.AdjustOOMScore(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("adjust the shim's OOM score: %w", err)
	}
	res.Address = addr
	return res, nil
}

// Stop is the `delete` subcommand, run by containerd in the bundle of a
// task whose shim is gone: it unmounts what the shim mounted and reports
// the task as killed.
func (manager) Stop(ctx context.Context, id string) (cshim.StopStatus, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return cshim.StopStatus{}, err
	}
	bundle := filepath.Join(filepath.Dir(cwd), id)
	if err := mount.UnmountRecursive(filepath.Join(bundle, "rootfs"), 0); err != nil {
		log.G(ctx).WithError(err).Warn("unmount rootfs")
	}
	return cshim.StopStatus{ExitedAt: time.Now(), ExitStatus: 128 + int(syscall.SIGKILL)}, nil
}

// Info is -info: the runtime's name and version; it takes no options.
func (manager) Info(ctx context.Context, _ io.Reader) (*types.RuntimeInfo, error) {
	return &types.RuntimeInfo{
		Name:    RuntimeType,
		Version: &types.RuntimeVersion{Version: version.Get().Version, Revision: version.Get().Commit},
	}, nil
}
