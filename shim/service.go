package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1/stats"
	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/task"
	cruntime "github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	cshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"

	"github.com/wasilet/wasilet/runtime"
)

// DefaultCacheDir is where every shim process of the node keeps compiled
// Wasm ($WASILET_SHIM_CACHE_DIR overrides it).
const (
	DefaultCacheDir = "/var/lib/wasilet/shim-cache"
	CacheDirEnv     = "WASILET_SHIM_CACHE_DIR"
)

var (
	_     = cshim.TTRPCService(&service{})
	empty = &ptypes.Empty{}
)

// service is the task service of one shim process: every container of its
// group, one runtime.Engine for all of them.
type service struct {
	engine    *runtime.Engine
	images    *imageStore
	pid       uint32
	shutdown  shutdown.Service
	events    chan any
	lifecycle sync.Mutex // orders TaskStart before the same task's TaskExit

	// shared: the shim serves a group other than its first container
	// (groupEnv); linger is its pending idle shutdown.
	shared bool

	mu         sync.Mutex
	containers map[string]*container
	linger     *time.Timer
}

// NewTaskService creates the task service, its engine and the goroutine
// that forwards events to containerd. containerdAddress is containerd's
// gRPC socket, where the shim reads the images of Wasm artifacts.
func NewTaskService(ctx context.Context, publisher cshim.Publisher, sd shutdown.Service, containerdAddress string) (taskAPI.TTRPCTaskService, error) {
	cacheDir := os.Getenv(CacheDirEnv)
	if cacheDir == "" {
		cacheDir = DefaultCacheDir
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		log.G(ctx).WithError(err).Warn("compiled cache unavailable: compiling in memory only")
		cacheDir = ""
	}
	e, err := runtime.NewEngine(runtime.Options{CacheDir: cacheDir})
	if err != nil {
		return nil, fmt.Errorf("wasmtime engine: %w", err)
	}
	s := &service{
		engine:     e,
		images:     &imageStore{address: containerdAddress},
		shared:     os.Getenv(groupEnv) == "shared",
		pid:        uint32(os.Getpid()),
		shutdown:   sd,
		events:     make(chan any, 128),
		containers: make(map[string]*container),
	}
	sd.RegisterCallback(func(context.Context) error { return errors.Join(s.images.close(), e.Close()) })
	go s.forward(ctx, publisher)
	return s, nil
}

func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

func (s *service) get(id, execID string) (*container, error) {
	if execID != "" {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "exec %s in task %s: exec is not supported for Wasm tasks", execID, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "task %s not found", id)
	}
	return c, nil
}

func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	s.mu.Lock()
	_, exists := s.containers[r.ID]
	s.mu.Unlock()
	if exists {
		return nil, errgrpc.ToGRPCf(errdefs.ErrAlreadyExists, "task %s", r.ID)
	}
	c, err := newContainer(ctx, s.engine, s.images, r)
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", r.ID).Error("create task")
		return nil, errgrpc.ToGRPC(err)
	}
	s.mu.Lock()
	s.containers[r.ID] = c
	if s.linger != nil {
		s.linger.Stop()
		s.linger = nil
	}
	s.mu.Unlock()
	s.send(&eventstypes.TaskCreate{
		ContainerID: r.ID,
		Bundle:      r.Bundle,
		Rootfs:      r.Rootfs,
		IO:          &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
		Pid:         s.pid,
	})
	return &taskAPI.CreateTaskResponse{Pid: s.pid}, nil
}

func (s *service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	c, err := s.get(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	if err := c.start(s.exited); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	s.send(&eventstypes.TaskStart{ContainerID: c.id, Pid: s.pid})
	return &taskAPI.StartResponse{Pid: s.pid}, nil
}

// exited publishes a task's exit (once per task).
func (s *service) exited(c *container) {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	c.mu.Lock()
	code, at, oom := c.exitStatus, c.exitedAt, c.oom
	c.mu.Unlock()
	if oom {
		// As the runc shim does when the cgroup's OOM killer struck: the
		// CRI marks the container OOMKilled on this event.
		s.send(&eventstypes.TaskOOM{ContainerID: c.id})
	}
	s.send(&eventstypes.TaskExit{
		ContainerID: c.id, ID: c.id, Pid: s.pid,
		ExitStatus: code, ExitedAt: protobuf.ToTimestamp(at),
	})
}

func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	c, err := s.get(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	st, code, at := c.status, c.exitStatus, c.exitedAt
	c.mu.Unlock()
	if st == task.Status_RUNNING {
		return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "task %s is running: kill it first", r.ID)
	}
	c.release(ctx)
	s.mu.Lock()
	delete(s.containers, r.ID)
	s.mu.Unlock()
	s.send(&eventstypes.TaskDelete{
		ContainerID: r.ID, ID: r.ID, Pid: s.pid,
		ExitStatus: code, ExitedAt: protobuf.ToTimestamp(at),
	})
	return &taskAPI.DeleteResponse{Pid: s.pid, ExitStatus: code, ExitedAt: protobuf.ToTimestamp(at)}, nil
}

func (s *service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	c, err := s.get(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	return c.state(s.pid), nil
}

func (s *service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*ptypes.Empty, error) {
	c, err := s.get(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if !c.kill(syscall.Signal(r.Signal), s.exited) {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "task %s: process already finished", r.ID)
	}
	return empty, nil
}

func (s *service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	c, err := s.get(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, errgrpc.ToGRPC(ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return &taskAPI.WaitResponse{ExitStatus: c.exitStatus, ExitedAt: protobuf.ToTimestamp(c.exitedAt)}, nil
}

func (s *service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	if _, err := s.get(r.ID, ""); err != nil {
		return nil, err
	}
	return &taskAPI.PidsResponse{Processes: []*task.ProcessInfo{{Pid: s.pid}}}, nil
}

func (s *service) CloseIO(ctx context.Context, r *taskAPI.CloseIORequest) (*ptypes.Empty, error) {
	c, err := s.get(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if r.Stdin && c.spec.Stdin != nil {
		if cl, ok := c.spec.Stdin.(interface{ Close() error }); ok {
			_ = cl.Close()
		}
	}
	return empty, nil
}

// Stats reports the guest's usage as cgroup v1 metrics (what containerd's
// CRI decodes on a cgroup v1 node): CPU time of the guest's thread as total
// and user CPU, linear memory as memory usage and RSS (0 for components,
// whose memory the runtime cannot see).
func (s *service) Stats(ctx context.Context, r *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	c, err := s.get(r.ID, "")
	if err != nil {
		return nil, err
	}
	u := c.usage.Sample()
	mem := uint64(0)
	if u.Memory > 0 {
		mem = uint64(u.Memory)
	}
	m := &stats.Metrics{
		CPU: &stats.CPUStat{Usage: &stats.CPUUsage{Total: uint64(u.CPU), User: uint64(u.CPU)}},
		Memory: &stats.MemoryStat{
			RSS: mem, TotalRSS: mem,
			Usage: &stats.MemoryEntry{Usage: mem, Max: mem, Limit: uint64(max(c.spec.MemoryLimit, 0))},
		},
		Pids: &stats.PidsStat{Current: 1},
	}
	a, err := typeurl.MarshalAny(m)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return &taskAPI.StatsResponse{Stats: typeurl.MarshalProto(a)}, nil
}

func (s *service) Connect(ctx context.Context, r *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	return &taskAPI.ConnectResponse{ShimPid: s.pid, TaskPid: s.pid}, nil
}

// Shutdown ends the shim once it serves no container. A shim shared by a
// group (GroupingNode's pods, an explicit group) lingers idle for
// sharedLinger first, so that the next pod's `start`, which found its
// socket, does not meet a shim on its way out; a Create in that time
// keeps it.
func (s *service) Shutdown(ctx context.Context, r *taskAPI.ShutdownRequest) (*ptypes.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.containers) > 0 {
		return empty, nil
	}
	if !s.shared {
		s.shutdown.Shutdown()
		return empty, nil
	}
	if s.linger == nil {
		s.linger = time.AfterFunc(sharedLinger, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.linger = nil
			if len(s.containers) == 0 {
				s.shutdown.Shutdown()
			}
		})
	}
	return empty, nil
}

// sharedLinger is how long a shared shim stays up with no container.
const sharedLinger = 3 * time.Second

func notImplemented(what string) error {
	return errgrpc.ToGRPCf(errdefs.ErrNotImplemented, "%s is not supported for Wasm tasks", what)
}

func (s *service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*ptypes.Empty, error) {
	return nil, notImplemented("exec")
}

func (s *service) ResizePty(ctx context.Context, r *taskAPI.ResizePtyRequest) (*ptypes.Empty, error) {
	return nil, notImplemented("a terminal")
}

func (s *service) Pause(ctx context.Context, r *taskAPI.PauseRequest) (*ptypes.Empty, error) {
	return nil, notImplemented("pause")
}

func (s *service) Resume(ctx context.Context, r *taskAPI.ResumeRequest) (*ptypes.Empty, error) {
	return nil, notImplemented("resume")
}

func (s *service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*ptypes.Empty, error) {
	return nil, notImplemented("checkpoint")
}

func (s *service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*ptypes.Empty, error) {
	return nil, notImplemented("updating resources")
}

func (s *service) send(evt any) {
	select {
	case s.events <- evt:
	case <-s.shutdown.Done():
	}
}

// forward publishes events in order until shutdown, then drains the rest.
func (s *service) forward(ctx context.Context, publisher cshim.Publisher) {
	ctx = context.WithoutCancel(ctx)
	defer publisher.Close()
	publish := func(e any) {
		if err := publisher.Publish(ctx, cruntime.GetTopic(e), e); err != nil {
			log.G(ctx).WithError(err).Error("publish event")
		}
	}
	for {
		select {
		case e := <-s.events:
			publish(e)
		case <-s.shutdown.Done():
			for {
				select {
				case e := <-s.events:
					publish(e)
				default:
					return
				}
			}
		}
	}
}
