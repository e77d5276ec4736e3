package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/wasilet/wasilet/internal/grpcsock"
	"github.com/wasilet/wasilet/internal/version"
)

const (
	// RuntimeName is what Version reports.
	RuntimeName = "wasilet"
	// RuntimeHandler is the runtime behind every sandbox.
	RuntimeHandler = "wasmtime"
	// criVersion is the CRI "kubelet API version" Version answers with.
	criVersion = "0.1.0"

	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	annoRestartCount   = "io.kubernetes.container.restartCount"
)

// Options configure a Server.
type Options struct {
	// Socket is the unix socket to serve (e.g. <data-dir>/cri.sock).
	Socket string
	// Pods is required; Images may be nil (no images listed).
	Pods   PodSource
	Images ImageSource
	// ImageFsDir is reported by ImageFsInfo (e.g. <data-dir>/oci); optional.
	ImageFsDir string
	// RuntimeVersion defaults to wasilet's version.
	RuntimeVersion string
	Logger         *slog.Logger
}

// Server is a read-only CRI v1 RuntimeService and ImageService presenting
// wasilet's Wasm pods as sandboxes and containers.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	opts Options
	log  *slog.Logger

	sock grpcsock.Endpoint
}

var (
	_ runtimeapi.RuntimeServiceServer = (*Server)(nil)
	_ runtimeapi.ImageServiceServer   = (*Server)(nil)
)

// New validates opts and returns a Server; Start serves it.
func New(opts Options) (*Server, error) {
	if opts.Socket == "" || opts.Pods == nil {
		return nil, errors.New("cri: Options.Socket and Options.Pods are required")
	}
	if err := grpcsock.CheckPath(opts.Socket); err != nil {
		return nil, fmt.Errorf("cri: %w", err)
	}
	if opts.RuntimeVersion == "" {
		opts.RuntimeVersion = strings.TrimPrefix(version.Get().Version, "v")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "cri")}
	s.sock = grpcsock.Endpoint{Path: opts.Socket, Name: "CRI server", Log: s.log}
	return s, nil
}

// SocketPath is Options.Socket.
func (s *Server) SocketPath() string { return s.opts.Socket }

// Start removes a stale socket and serves the CRI services.
func (s *Server) Start() error {
	err := s.sock.Start(func() *grpc.Server {
		srv := grpc.NewServer(
			grpc.ChainUnaryInterceptor(unimplementedUnary),
			grpc.ChainStreamInterceptor(unimplementedStream))
		runtimeapi.RegisterRuntimeServiceServer(srv, s)
		runtimeapi.RegisterImageServiceServer(srv, s)
		return srv
	})
	if err != nil {
		return fmt.Errorf("cri: %w", err)
	}
	s.log.Info("CRI endpoint listening", "socket", s.opts.Socket)
	return nil
}

// Stop ends the server and removes its socket.
func (s *Server) Stop() {
	_ = s.sock.Stop() // a socket that cannot be removed is left, as before
}

// readOnly is the answer to every call that would change a pod or image.
func readOnly(op string) error {
	return status.Errorf(codes.Unimplemented,
		"%s: wasilet's CRI endpoint is read-only: Wasm pods and images are managed through the Kubernetes API (create or delete the Pod with kubectl), not through CRI", op)
}

// unimplementedUnary rewords the generated "method X not implemented" so a
// caller knows why.
func unimplementedUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	return resp, reword(info.FullMethod, err)
}

func unimplementedStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return reword(info.FullMethod, h(srv, ss))
}

func reword(method string, err error) error {
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unimplemented && strings.HasSuffix(st.Message(), " not implemented") {
		return status.Errorf(codes.Unimplemented, "%s is not supported by wasilet's CRI endpoint (read-only view of Wasm pods; manage them through the Kubernetes API)", method[strings.LastIndex(method, "/")+1:])
	}
	return err
}

// Version reports wasilet as the runtime.
func (s *Server) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           criVersion,
		RuntimeName:       RuntimeName,
		RuntimeVersion:    s.opts.RuntimeVersion,
		RuntimeApiVersion: "v1",
	}, nil
}

// Status reports the runtime and the network ready.
func (s *Server) Status(_ context.Context, r *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			{Type: runtimeapi.NetworkReady, Status: true},
		}},
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{}}},
	}
	if r.Verbose {
		resp.Info = map[string]string{"info": mustJSON(map[string]any{
			"runtimeName":    RuntimeName,
			"runtimeVersion": s.opts.RuntimeVersion,
			"runtimeHandler": RuntimeHandler,
			"socket":         s.opts.Socket,
			"imageFsDir":     s.opts.ImageFsDir,
		})}
	}
	return resp, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return strconv.Quote(err.Error())
	}
	return string(b)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// resolve finds the one id of ids that equals or starts with want.
func resolve(kind, want string, ids []string) (string, error) {
	if want == "" {
		return "", status.Errorf(codes.InvalidArgument, "%s id is empty", kind)
	}
	var found []string
	for _, id := range ids {
		if id == want {
			return id, nil
		}
		if strings.HasPrefix(id, want) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", status.Errorf(codes.NotFound, "%s %q not found", kind, want)
	case 1:
		return found[0], nil
	}
	return "", status.Errorf(codes.InvalidArgument, "%s id prefix %q is ambiguous: %d matches", kind, want, len(found))
}

func matchLabels(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// snapshot is one Snapshot with lookups.
type snapshot struct {
	pods []Pod
}

func (s *Server) snapshot() snapshot {
	pods := s.opts.Pods.Snapshot()
	slices.SortStableFunc(pods, func(a, b Pod) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.UID, b.UID)
	})
	return snapshot{pods: pods}
}

func (sn snapshot) podIDs() []string {
	ids := make([]string, 0, len(sn.pods))
	for _, p := range sn.pods {
		ids = append(ids, p.UID)
	}
	return ids
}

func (sn snapshot) pod(id string) *Pod {
	for i := range sn.pods {
		if sn.pods[i].UID == id {
			return &sn.pods[i]
		}
	}
	return nil
}

func (sn snapshot) containerIDs() []string {
	var ids []string
	for _, p := range sn.pods {
		for _, c := range p.Containers {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

func (sn snapshot) container(id string) (*Pod, *Container) {
	for i := range sn.pods {
		for j := range sn.pods[i].Containers {
			if sn.pods[i].Containers[j].ID == id {
				return &sn.pods[i], &sn.pods[i].Containers[j]
			}
		}
	}
	return nil, nil
}

func sandboxLabels(p *Pod) map[string]string {
	l := map[string]string{}
	for k, v := range p.Labels {
		l[k] = v
	}
	l[labelPodName] = p.Name
	l[labelPodNamespace] = p.Namespace
	l[labelPodUID] = p.UID
	return l
}

func sandboxState(p *Pod) runtimeapi.PodSandboxState {
	if p.Ready {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func sandboxMetadata(p *Pod) *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: p.Name, Uid: p.UID, Namespace: p.Namespace}
}

func toSandbox(p *Pod) *runtimeapi.PodSandbox {
	return &runtimeapi.PodSandbox{
		Id:          p.UID,
		Metadata:    sandboxMetadata(p),
		State:       sandboxState(p),
		CreatedAt:   podCreatedAt(p),
		Labels:      sandboxLabels(p),
		Annotations: copyMap(p.Annotations),
	}
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Server) listSandboxes(f *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	sn := s.snapshot()
	want := ""
	if f.GetId() != "" {
		id, err := resolve("pod sandbox", f.GetId(), sn.podIDs())
		if status.Code(err) == codes.NotFound {
			return []*runtimeapi.PodSandbox{}, nil
		}
		if err != nil {
			return nil, err
		}
		want = id
	}
	out := []*runtimeapi.PodSandbox{}
	for i := range sn.pods {
		p := &sn.pods[i]
		if want != "" && p.UID != want {
			continue
		}
		sb := toSandbox(p)
		if f.GetState() != nil && sb.State != f.GetState().GetState() {
			continue
		}
		if !matchLabels(f.GetLabelSelector(), sb.Labels) {
			continue
		}
		out = append(out, sb)
	}
	return out, nil
}

// ListPodSandbox lists the pods as sandboxes.
func (s *Server) ListPodSandbox(_ context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	items, err := s.listSandboxes(r.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxResponse{Items: items}, nil
}

// StreamPodSandboxes is ListPodSandbox as a stream.
func (s *Server) StreamPodSandboxes(r *runtimeapi.StreamPodSandboxesRequest, ss grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	items, err := s.listSandboxes(r.GetFilter())
	if err != nil {
		return err
	}
	return sendChunks(items, func(c []*runtimeapi.PodSandbox) error {
		return ss.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: c})
	})
}

// sendChunks sends items in messages of at most 500.
func sendChunks[T any](items []T, send func([]T) error) error {
	const chunk = 500
	for len(items) > chunk {
		if err := send(items[:chunk]); err != nil {
			return err
		}
		items = items[chunk:]
	}
	return send(items)
}

// PodSandboxStatus reports one pod.
func (s *Server) PodSandboxStatus(_ context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sn := s.snapshot()
	id, err := resolve("pod sandbox", r.GetPodSandboxId(), sn.podIDs())
	if err != nil {
		return nil, err
	}
	p := sn.pod(id)
	st := &runtimeapi.PodSandboxStatus{
		Id:          p.UID,
		Metadata:    sandboxMetadata(p),
		State:       sandboxState(p),
		CreatedAt:   podCreatedAt(p),
		Network:     &runtimeapi.PodSandboxNetworkStatus{Ip: p.IP},
		Labels:      sandboxLabels(p),
		Annotations: copyMap(p.Annotations),
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st, Timestamp: time.Now().UnixNano()}
	for i := range p.Containers {
		resp.ContainersStatuses = append(resp.ContainersStatuses, containerStatus(p, &p.Containers[i]))
	}
	if r.Verbose {
		var cs []string
		for _, c := range p.Containers {
			cs = append(cs, c.ID)
		}
		resp.Info = map[string]string{"info": mustJSON(map[string]any{
			"runtimeHandler": RuntimeHandler,
			"podUID":         p.UID,
			"containers":     cs,
		})}
	}
	return resp, nil
}

func containerState(c *Container) runtimeapi.ContainerState {
	switch c.State {
	case ContainerCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case ContainerRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case ContainerExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// imageRef is the resolved reference, falling back to the image id and the
// spec's reference (CRI clients reject an empty ImageRef).
func imageRef(c *Container) string {
	switch {
	case c.ImageRef != "":
		return c.ImageRef
	case c.ImageID != "":
		return c.ImageID
	}
	return c.Image
}

// createdAt never answers 0 (CRI clients reject it): a container not yet
// created reports its pod's creation time.
func createdAt(p *Pod, c *Container) int64 {
	for _, t := range []time.Time{c.CreatedAt, c.StartedAt, p.CreatedAt} {
		if !t.IsZero() {
			return t.UnixNano()
		}
	}
	return 1
}

func podCreatedAt(p *Pod) int64 {
	if !p.CreatedAt.IsZero() {
		return p.CreatedAt.UnixNano()
	}
	return 1
}

func containerLabels(p *Pod, c *Container) map[string]string {
	return map[string]string{
		labelPodName:       p.Name,
		labelPodNamespace:  p.Namespace,
		labelPodUID:        p.UID,
		labelContainerName: c.Name,
	}
}

func containerAnnotations(c *Container) map[string]string {
	a := copyMap(c.Annotations)
	if a == nil {
		a = map[string]string{}
	}
	a[annoRestartCount] = strconv.FormatUint(uint64(c.RestartCount), 10)
	return a
}

func toContainer(p *Pod, c *Container) *runtimeapi.Container {
	return &runtimeapi.Container{
		Id:           c.ID,
		PodSandboxId: p.UID,
		Metadata:     &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.RestartCount},
		Image:        &runtimeapi.ImageSpec{Image: c.Image},
		ImageRef:     imageRef(c),
		ImageId:      c.ImageID,
		State:        containerState(c),
		CreatedAt:    createdAt(p, c),
		Labels:       containerLabels(p, c),
		Annotations:  containerAnnotations(c),
	}
}

func containerStatus(p *Pod, c *Container) *runtimeapi.ContainerStatus {
	st := &runtimeapi.ContainerStatus{
		Id:          c.ID,
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.RestartCount},
		State:       containerState(c),
		CreatedAt:   createdAt(p, c),
		StartedAt:   unixNano(c.StartedAt),
		FinishedAt:  unixNano(c.FinishedAt),
		ExitCode:    c.ExitCode,
		Image:       &runtimeapi.ImageSpec{Image: c.Image},
		ImageRef:    imageRef(c),
		ImageId:     c.ImageID,
		Reason:      c.Reason,
		Message:     c.Message,
		Labels:      containerLabels(p, c),
		Annotations: containerAnnotations(c),
		LogPath:     c.LogPath,
	}
	for _, m := range c.Mounts {
		st.Mounts = append(st.Mounts, &runtimeapi.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.ReadOnly})
	}
	return st
}

func (s *Server) listContainers(f *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	sn := s.snapshot()
	wantC, wantP := "", ""
	if f.GetId() != "" {
		id, err := resolve("container", f.GetId(), sn.containerIDs())
		if status.Code(err) == codes.NotFound {
			return []*runtimeapi.Container{}, nil
		}
		if err != nil {
			return nil, err
		}
		wantC = id
	}
	if f.GetPodSandboxId() != "" {
		id, err := resolve("pod sandbox", f.GetPodSandboxId(), sn.podIDs())
		if status.Code(err) == codes.NotFound {
			return []*runtimeapi.Container{}, nil
		}
		if err != nil {
			return nil, err
		}
		wantP = id
	}
	out := []*runtimeapi.Container{}
	for i := range sn.pods {
		p := &sn.pods[i]
		if wantP != "" && p.UID != wantP {
			continue
		}
		for j := range p.Containers {
			c := toContainer(p, &p.Containers[j])
			if wantC != "" && c.Id != wantC {
				continue
			}
			if f.GetState() != nil && c.State != f.GetState().GetState() {
				continue
			}
			if !matchLabels(f.GetLabelSelector(), c.Labels) {
				continue
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// ListContainers lists every container attempt of every pod.
func (s *Server) ListContainers(_ context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	cs, err := s.listContainers(r.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainersResponse{Containers: cs}, nil
}

// StreamContainers is ListContainers as a stream.
func (s *Server) StreamContainers(r *runtimeapi.StreamContainersRequest, ss grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	cs, err := s.listContainers(r.GetFilter())
	if err != nil {
		return err
	}
	return sendChunks(cs, func(c []*runtimeapi.Container) error {
		return ss.Send(&runtimeapi.StreamContainersResponse{Containers: c})
	})
}

// ContainerStatus reports one container, with its log path.
func (s *Server) ContainerStatus(_ context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	sn := s.snapshot()
	id, err := resolve("container", r.GetContainerId(), sn.containerIDs())
	if err != nil {
		return nil, err
	}
	p, c := sn.container(id)
	resp := &runtimeapi.ContainerStatusResponse{Status: containerStatus(p, c)}
	if r.Verbose {
		resp.Info = map[string]string{"info": mustJSON(map[string]any{
			"sandboxID":      p.UID,
			"pod":            p.Namespace + "/" + p.Name,
			"runtimeHandler": RuntimeHandler,
			"image":          c.Image,
			"imageRef":       c.ImageRef,
			"logPath":        c.LogPath,
			"restartCount":   c.RestartCount,
			"mounts":         c.Mounts,
		})}
	}
	return resp, nil
}

func containerStats(p *Pod, c *Container) *runtimeapi.ContainerStats {
	ts := unixNano(c.StatsAt)
	if ts == 0 {
		ts = time.Now().UnixNano()
	}
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id:          c.ID,
			Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.RestartCount},
			Labels:      containerLabels(p, c),
			Annotations: containerAnnotations(c),
		},
		Cpu:    &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: c.CPUUsageNanos}},
		Memory: &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: &runtimeapi.UInt64Value{Value: c.MemoryBytes}, UsageBytes: &runtimeapi.UInt64Value{Value: c.MemoryBytes}},
		WritableLayer: &runtimeapi.FilesystemUsage{
			Timestamp: ts, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: filepath.Dir(c.LogPath)},
			UsedBytes: &runtimeapi.UInt64Value{}, InodesUsed: &runtimeapi.UInt64Value{},
		},
	}
}

// ContainerStats reports one container's usage.
func (s *Server) ContainerStats(_ context.Context, r *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	sn := s.snapshot()
	id, err := resolve("container", r.GetContainerId(), sn.containerIDs())
	if err != nil {
		return nil, err
	}
	p, c := sn.container(id)
	return &runtimeapi.ContainerStatsResponse{Stats: containerStats(p, c)}, nil
}

func (s *Server) listStats(f *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	cs, err := s.listContainers(&runtimeapi.ContainerFilter{Id: f.GetId(), PodSandboxId: f.GetPodSandboxId(), LabelSelector: f.GetLabelSelector()})
	if err != nil {
		return nil, err
	}
	sn := s.snapshot()
	out := []*runtimeapi.ContainerStats{}
	for _, c := range cs {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if p, k := sn.container(c.Id); k != nil {
			out = append(out, containerStats(p, k))
		}
	}
	return out, nil
}

// ListContainerStats reports the usage of running containers.
func (s *Server) ListContainerStats(_ context.Context, r *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	st, err := s.listStats(r.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: st}, nil
}

// StreamContainerStats is ListContainerStats as a stream.
func (s *Server) StreamContainerStats(r *runtimeapi.StreamContainerStatsRequest, ss grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	st, err := s.listStats(r.GetFilter())
	if err != nil {
		return err
	}
	return sendChunks(st, func(c []*runtimeapi.ContainerStats) error {
		return ss.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: c})
	})
}

func podStats(p *Pod) *runtimeapi.PodSandboxStats {
	now := time.Now().UnixNano()
	var cpu, mem uint64
	var cs []*runtimeapi.ContainerStats
	for i := range p.Containers {
		c := &p.Containers[i]
		if c.State != ContainerRunning {
			continue
		}
		cpu += c.CPUUsageNanos
		mem += c.MemoryBytes
		cs = append(cs, containerStats(p, c))
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: p.UID, Metadata: sandboxMetadata(p), Labels: sandboxLabels(p), Annotations: copyMap(p.Annotations)},
		Linux: &runtimeapi.LinuxPodSandboxStats{
			Cpu:        &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}},
			Memory:     &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{Value: mem}, UsageBytes: &runtimeapi.UInt64Value{Value: mem}},
			Containers: cs,
		},
	}
}

// PodSandboxStats reports one pod's usage (the sum of its running containers).
func (s *Server) PodSandboxStats(_ context.Context, r *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sn := s.snapshot()
	id, err := resolve("pod sandbox", r.GetPodSandboxId(), sn.podIDs())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: podStats(sn.pod(id))}, nil
}

func (s *Server) listPodStats(f *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	sbs, err := s.listSandboxes(&runtimeapi.PodSandboxFilter{Id: f.GetId(), LabelSelector: f.GetLabelSelector()})
	if err != nil {
		return nil, err
	}
	sn := s.snapshot()
	out := []*runtimeapi.PodSandboxStats{}
	for _, sb := range sbs {
		if p := sn.pod(sb.Id); p != nil {
			out = append(out, podStats(p))
		}
	}
	return out, nil
}

// ListPodSandboxStats reports every pod's usage.
func (s *Server) ListPodSandboxStats(_ context.Context, r *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	st, err := s.listPodStats(r.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: st}, nil
}

// StreamPodSandboxStats is ListPodSandboxStats as a stream.
func (s *Server) StreamPodSandboxStats(r *runtimeapi.StreamPodSandboxStatsRequest, ss grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	st, err := s.listPodStats(r.GetFilter())
	if err != nil {
		return err
	}
	return sendChunks(st, func(c []*runtimeapi.PodSandboxStats) error {
		return ss.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: c})
	})
}

// The calls that would change something.

func (s *Server) RunPodSandbox(context.Context, *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	return nil, readOnly("RunPodSandbox")
}
func (s *Server) StopPodSandbox(context.Context, *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	return nil, readOnly("StopPodSandbox")
}
func (s *Server) RemovePodSandbox(context.Context, *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	return nil, readOnly("RemovePodSandbox")
}
func (s *Server) CreateContainer(context.Context, *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	return nil, readOnly("CreateContainer")
}
func (s *Server) StartContainer(context.Context, *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	return nil, readOnly("StartContainer")
}
func (s *Server) StopContainer(context.Context, *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	return nil, readOnly("StopContainer")
}
func (s *Server) RemoveContainer(context.Context, *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	return nil, readOnly("RemoveContainer")
}
func (s *Server) UpdateContainerResources(context.Context, *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	return nil, readOnly("UpdateContainerResources")
}
func (s *Server) UpdatePodSandboxResources(context.Context, *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	return nil, readOnly("UpdatePodSandboxResources")
}
func (s *Server) ReopenContainerLog(context.Context, *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	return nil, readOnly("ReopenContainerLog")
}
func (s *Server) ExecSync(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	return nil, readOnly("ExecSync (exec is not supported for wasm32-wasi)")
}
func (s *Server) Exec(context.Context, *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return nil, readOnly("Exec (exec is not supported for wasm32-wasi)")
}
func (s *Server) Attach(context.Context, *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return nil, readOnly("Attach (attach is not supported for wasm32-wasi)")
}
func (s *Server) PortForward(context.Context, *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return nil, readOnly("PortForward (port-forward is not supported for wasm32-wasi)")
}
func (s *Server) UpdateRuntimeConfig(context.Context, *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return nil, readOnly("UpdateRuntimeConfig")
}
func (s *Server) CheckpointContainer(context.Context, *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return nil, readOnly("CheckpointContainer")
}
func (s *Server) CheckpointPod(context.Context, *runtimeapi.CheckpointPodRequest) (*runtimeapi.CheckpointPodResponse, error) {
	return nil, readOnly("CheckpointPod")
}
func (s *Server) RestorePod(context.Context, *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	return nil, readOnly("RestorePod")
}
func (s *Server) PullImage(context.Context, *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	return nil, readOnly("PullImage (images are pulled when a Pod needs them)")
}
func (s *Server) RemoveImage(context.Context, *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	return nil, readOnly("RemoveImage")
}
