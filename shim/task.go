package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	"github.com/containerd/errdefs"
	"github.com/containerd/fifo"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wasilet/wasilet/oci"
	"github.com/wasilet/wasilet/runtime"
)

// wasmMagic starts every Wasm binary, module or component.
var wasmMagic = []byte("\x00asm")

// container is one task of the shim: a Wasm guest, or a pod's sandbox
// container held without a process.
type container struct {
	id, bundle string
	rootfs     string // the guest's "/"
	mounted    bool   // rootfs was mounted by Create and is unmounted by Delete
	sandbox    bool
	stdin      string
	stdout     string
	stderr     string
	prog       *runtime.Program // nil for a sandbox
	spec       runtime.Spec
	usage      runtime.Usage

	// fifos are the write ends of the stdout/stderr FIFOs (drained before
	// closing); closers are every stdio FIFO, closed once the guest has ended.
	fifos   []io.WriteCloser
	closers []io.Closer

	mu         sync.Mutex
	status     task.Status
	exitStatus uint32
	exitedAt   time.Time
	signal     syscall.Signal // the signal that stopped it, 0 when none
	oom        bool           // the guest ran out of its memory limit
	cancel     context.CancelFunc
	done       chan struct{} // closed when it has exited
}

// newContainer prepares a task from a Create request: mounts the rootfs,
// reads the spec, loads the Wasm program and opens the stdio FIFOs. On error
// nothing is left mounted or open.
func newContainer(ctx context.Context, e *runtime.Engine, images *imageStore, r *taskAPI.CreateTaskRequest) (_ *container, retErr error) {
	if r.Terminal {
		return nil, fmt.Errorf("terminals are not supported for Wasm tasks: %w", errdefs.ErrNotImplemented)
	}
	if r.Checkpoint != "" {
		return nil, fmt.Errorf("checkpoints are not supported for Wasm tasks: %w", errdefs.ErrNotImplemented)
	}
	spec, err := readSpec(r.Bundle)
	if err != nil {
		return nil, err
	}
	c := &container{
		id: r.ID, bundle: r.Bundle,
		stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr,
		status: task.Status_CREATED,
		done:   make(chan struct{}),
	}
	c.sandbox = spec.Annotations[containerTypeKey] == containerTypeSandbox
	defer func() {
		if retErr != nil {
			c.release(ctx)
		}
	}()

	switch {
	case len(r.Rootfs) > 0:
		c.rootfs = filepath.Join(r.Bundle, "rootfs")
		if err := os.MkdirAll(c.rootfs, 0o711); err != nil {
			return nil, err
		}
		if err := mount.All(mount.FromProto(r.Rootfs), c.rootfs); err != nil {
			return nil, fmt.Errorf("mount the rootfs: %w", err)
		}
		c.mounted = true
	case spec.Root != nil && spec.Root.Path != "":
		c.rootfs = spec.Root.Path
		if !filepath.IsAbs(c.rootfs) {
			c.rootfs = filepath.Join(r.Bundle, c.rootfs)
		}
	default:
		return nil, fmt.Errorf("no rootfs: neither rootfs mounts nor root.path in the spec: %w", errdefs.ErrInvalidArgument)
	}
	if c.sandbox {
		return c, nil
	}

	if c.spec, err = guestSpec(spec, c.rootfs); err != nil {
		return nil, err
	}
	wasm, digest, err := loadWasm(ctx, images, r.ID, c.rootfs, spec.Process)
	if err != nil {
		return nil, err
	}
	if c.prog, err = e.Load(ctx, wasm, digest); err != nil {
		return nil, fmt.Errorf("load %s: %w", c.spec.Name, err)
	}
	if err := c.openIO(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func readSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read the OCI spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse the OCI spec %s: %w: %w", filepath.Join(bundle, "config.json"), err, errdefs.ErrInvalidArgument)
	}
	if s.Process == nil {
		return nil, fmt.Errorf("the OCI spec has no process: %w", errdefs.ErrInvalidArgument)
	}
	return &s, nil
}

// guestSpec turns the OCI spec into the guest's runtime.Spec (without
// stdio): argv, env, preopens and the memory limit.
func guestSpec(s *specs.Spec, rootfs string) (runtime.Spec, error) {
	p := s.Process
	if len(p.Args) == 0 {
		return runtime.Spec{}, fmt.Errorf("the OCI spec has no process args (the image needs an entrypoint naming its .wasm file): %w", errdefs.ErrInvalidArgument)
	}
	for _, kv := range p.Env {
		if !strings.Contains(kv, "=") {
			return runtime.Spec{}, fmt.Errorf("environment entry %q is not KEY=VALUE: %w", kv, errdefs.ErrInvalidArgument)
		}
	}
	rs := runtime.Spec{
		Name:   p.Args[0],
		Args:   slices.Clone(p.Args[1:]),
		Env:    slices.Clone(p.Env),
		Mounts: []runtime.Mount{{HostPath: rootfs, GuestPath: "/", ReadOnly: s.Root != nil && s.Root.Readonly}},
	}
	for _, m := range s.Mounts {
		if !isBind(m) || path.Clean(m.Destination) == "/" {
			continue
		}
		// Only directories can be preopened: file binds (/etc/hosts,
		// /dev/termination-log, …) are left out.
		if fi, err := os.Stat(m.Source); err != nil || !fi.IsDir() {
			continue
		}
		rs.Mounts = append(rs.Mounts, runtime.Mount{
			HostPath:  m.Source,
			GuestPath: path.Clean(m.Destination),
			ReadOnly:  slices.Contains(m.Options, "ro"),
		})
	}
	if l := s.Linux; l != nil && l.Resources != nil && l.Resources.Memory != nil && l.Resources.Memory.Limit != nil && *l.Resources.Memory.Limit > 0 {
		rs.MemoryLimit = *l.Resources.Memory.Limit
	}
	return rs, nil
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// maxWasmSize bounds the binary read from the rootfs or the content store.
const maxWasmSize = 1 << 30

// errNotInRootfs is readWasm's error when process.args[0] is not a file of
// the rootfs.
var errNotInRootfs = errors.New("not in the rootfs")

// loadWasm finds the guest's binary: the file process.args[0] names in the
// rootfs (a plain image), or else the Wasm layer of the container's image
// when that image is a Wasm artifact (which containerd does not unpack, so
// its rootfs is empty); the process's args are then the guest's argv as
// they are. It returns the digest when it is known (an artifact's layer).
func loadWasm(ctx context.Context, images *imageStore, id, rootfs string, p *specs.Process) ([]byte, string, error) {
	wasm, err := readWasm(rootfs, p)
	if !errors.Is(err, errNotInRootfs) {
		return wasm, "", err
	}
	wasm, digest, aerr := images.wasmOf(ctx, id)
	var unsupported *oci.UnsupportedError
	switch {
	case aerr == nil:
		return wasm, digest, nil
	case errors.As(aerr, &unsupported):
		return nil, "", fmt.Errorf("the entrypoint %s is not in the image, and the image is not a Wasm artifact (wasilet runs the .wasm file the entrypoint names, or the Wasm layer of an artifact): %v: %w", p.Args[0], aerr, errdefs.ErrInvalidArgument)
	default:
		return nil, "", fmt.Errorf("the entrypoint %s is not in the image, and the image's Wasm layer could not be read from containerd: %w", p.Args[0], aerr)
	}
}

// readWasm reads process.args[0] from the rootfs (relative names from
// process.cwd), never following a path out of it.
func readWasm(rootfs string, p *specs.Process) ([]byte, error) {
	name := p.Args[0]
	if !path.IsAbs(name) {
		cwd := p.Cwd
		if cwd == "" {
			cwd = "/"
		}
		name = path.Join(cwd, name)
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	rel := strings.TrimPrefix(path.Clean(name), "/")
	f, err := root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Args[0], errNotInRootfs)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxWasmSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.Args[0], err)
	}
	if len(b) > maxWasmSize {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", p.Args[0], maxWasmSize, errdefs.ErrInvalidArgument)
	}
	if !bytes.HasPrefix(b, wasmMagic) {
		return nil, fmt.Errorf("the entrypoint %s is not a WebAssembly binary (runtime %s runs Wasm modules and components only): %w", p.Args[0], RuntimeType, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// openIO opens the stdio FIFOs (or files) containerd created, as the runc
// shim does: a FIFO's write end, plus a read end held so that a reader
// going away does not fail the guest's writes.
func (c *container) openIO(ctx context.Context) error {
	var outs []io.Writer
	for _, name := range []string{c.stdout, c.stderr} {
		if name == "" {
			outs = append(outs, nil)
			continue
		}
		if strings.Contains(name, "://") && !strings.HasPrefix(name, "fifo://") && !strings.HasPrefix(name, "file://") {
			return fmt.Errorf("stdio %q: only FIFOs and files are supported: %w", name, errdefs.ErrNotImplemented)
		}
		name = strings.TrimPrefix(strings.TrimPrefix(name, "fifo://"), "file://")
		isFifo, err := fifo.IsFifo(name)
		if err != nil {
			return err
		}
		if !isFifo {
			f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			c.closers = append(c.closers, f)
			outs = append(outs, f)
			continue
		}
		w, err := fifo.OpenFifo(ctx, name, syscall.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open the FIFO %s: %w", name, err)
		}
		c.closers = append(c.closers, w)
		c.fifos = append(c.fifos, w)
		r, err := fifo.OpenFifo(ctx, name, syscall.O_RDONLY, 0)
		if err != nil {
			return fmt.Errorf("open the FIFO %s: %w", name, err)
		}
		c.closers = append(c.closers, r)
		outs = append(outs, w)
	}
	c.spec.Stdout, c.spec.Stderr = outs[0], outs[1]
	if c.stdin != "" {
		r, err := fifo.OpenFifo(context.Background(), c.stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open the FIFO %s: %w", c.stdin, err)
		}
		c.closers = append(c.closers, r)
		c.spec.Stdin = r
	}
	return nil
}

// drainTimeout bounds how long an ended guest's output may wait in its
// FIFOs for containerd's reader.
const drainTimeout = 2 * time.Second

// drainIO waits (up to drainTimeout) until what the guest wrote has left
// the FIFOs. The shim holds a read end of each FIFO, so its write end opens
// even before containerd's reader does; closing both ends while the output
// still sits in the pipe, before that reader has opened it, would discard
// the output (seen as an empty `ctr run` stdout on a loaded machine).
func (c *container) drainIO() {
	deadline := time.Now().Add(drainTimeout)
	for _, f := range c.fifos {
		sc, ok := f.(syscall.Conn)
		if !ok {
			continue
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			continue
		}
		for {
			pending := 0
			if err := raw.Control(func(fd uintptr) { pending, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil || pending == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// closeIO closes the stdio FIFOs.
func (c *container) closeIO() {
	for _, cl := range c.closers {
		_ = cl.Close()
	}
	c.closers, c.fifos = nil, nil
}

// release closes stdio and unmounts the rootfs.
func (c *container) release(ctx context.Context) {
	c.closeIO()
	if c.mounted {
		if err := mount.UnmountRecursive(c.rootfs, 0); err != nil {
			log.G(ctx).WithError(err).WithField("id", c.id).Warn("unmount rootfs")
		}
		c.mounted = false
	}
}

// start runs the guest; exited is called once, when it has ended.
func (c *container) start(exited func(*container)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status != task.Status_CREATED {
		return fmt.Errorf("task %s is %s, not created: %w", c.id, c.status, errdefs.ErrFailedPrecondition)
	}
	c.status = task.Status_RUNNING
	if c.sandbox {
		// Held until killed, like the pause process.
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	spec := c.spec
	spec.Usage = &c.usage
	go func() {
		defer cancel()
		res, err := c.prog.Run(ctx, spec)
		code := res.ExitCode
		if err != nil {
			code = 1
			if spec.Stderr != nil {
				fmt.Fprintf(spec.Stderr, "%s: %v\n", BinaryName, err)
			}
		}
		if res.Reason == runtime.ReasonOOMKilled && spec.Stderr != nil && res.Message != "" {
			fmt.Fprintf(spec.Stderr, "%s: %s\n", BinaryName, res.Message)
		}
		c.mu.Lock()
		if c.signal != 0 && res.Reason == runtime.ReasonKilled {
			code = 128 + int(c.signal)
		}
		c.oom = res.Reason == runtime.ReasonOOMKilled
		c.mu.Unlock()
		c.drainIO()
		c.closeIO()
		c.exit(uint32(code))
		exited(c)
	}()
	return nil
}

// exit records the end of the task.
func (c *container) exit(code uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exitLocked(code)
}

func (c *container) exitLocked(code uint32) {
	c.status = task.Status_STOPPED
	c.exitStatus = code
	c.exitedAt = time.Now()
	close(c.done)
}

// kill stops the task with sig; ok false when it had already ended. A
// created or sandbox task (no guest running) ends at once: exited is
// called here for it, and by the guest's goroutine otherwise.
func (c *container) kill(sig syscall.Signal, exited func(*container)) (ok bool) {
	if ignoredSignal(sig) {
		return true
	}
	c.mu.Lock()
	switch c.status {
	case task.Status_STOPPED:
		c.mu.Unlock()
		return false
	case task.Status_RUNNING:
		if c.signal == 0 {
			c.signal = sig
		}
		if c.cancel != nil {
			c.cancel()
			c.mu.Unlock()
			return true
		}
	}
	c.exitLocked(128 + uint32(sig))
	c.mu.Unlock()
	c.closeIO()
	exited(c)
	return true
}

// ignoredSignal says whether sig leaves a guest running: a Wasm guest has
// no signal handlers, so every signal whose default action ends a process
// stops it, and the others do nothing.
func ignoredSignal(sig syscall.Signal) bool {
	switch sig {
	case 0, syscall.SIGCHLD, syscall.SIGCONT, syscall.SIGURG, syscall.SIGWINCH:
		return true
	}
	return false
}

// state is the task's State response.
func (c *container) state(pid uint32) *taskAPI.StateResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &taskAPI.StateResponse{
		ID: c.id, Bundle: c.bundle, Pid: pid, Status: c.status,
		Stdin: c.stdin, Stdout: c.stdout, Stderr: c.stderr,
	}
	if c.status == task.Status_STOPPED {
		r.ExitStatus = c.exitStatus
		r.ExitedAt = protobuf.ToTimestamp(c.exitedAt)
	}
	return r
}
