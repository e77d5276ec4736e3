package podresources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/wasilet/wasilet/internal/devicemanager"
	"github.com/wasilet/wasilet/internal/grpcsock"
)

// Socket is the file name of the PodResources socket in Options.Dir.
const Socket = "kubelet.sock"

// PodLister lists the pods the node runs (terminal ones included; List
// leaves them out, as the kubelet lists only active pods). It is
// virtual-kubelet's PodLifecycleHandler.GetPods, so *pods.Provider fits.
type PodLister interface {
	GetPods(ctx context.Context) ([]*corev1.Pod, error)
}

// DeviceSource answers which devices containers hold and which are healthy;
// *devicemanager.Manager implements it.
type DeviceSource interface {
	ContainerDevices(podUID types.UID, container string) map[string][]devicemanager.Device
	AllocatableDevices() map[string][]devicemanager.Device
}

var _ DeviceSource = (*devicemanager.Manager)(nil)

// Options configure a Server.
type Options struct {
	// Dir is <data-dir>/pod-resources; the socket is Dir/kubelet.sock.
	Dir     string
	Pods    PodLister
	Devices DeviceSource
	Logger  *slog.Logger
}

// Server is the PodResources v1 gRPC server.
type Server struct {
	podresourcesapi.UnimplementedPodResourcesListerServer

	opts   Options
	log    *slog.Logger
	socket string

	sock grpcsock.Endpoint
}

var _ podresourcesapi.PodResourcesListerServer = (*Server)(nil)

// New validates opts and returns a Server; Start serves it.
func New(opts Options) (*Server, error) {
	if opts.Dir == "" || opts.Pods == nil || opts.Devices == nil {
		return nil, errors.New("podresources: Options.Dir, Pods and Devices are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	sock := filepath.Join(opts.Dir, Socket)
	if err := grpcsock.CheckPath(sock); err != nil {
		return nil, fmt.Errorf("podresources: %w", err)
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "podresources"), socket: sock}
	s.sock = grpcsock.Endpoint{Path: sock, Name: "PodResources server", Log: s.log}
	return s, nil
}

// SocketPath is Dir/kubelet.sock.
func (s *Server) SocketPath() string { return s.socket }

// Start removes a stale socket and serves the API.
func (s *Server) Start() error {
	err := s.sock.Start(func() *grpc.Server {
		srv := grpc.NewServer()
		podresourcesapi.RegisterPodResourcesListerServer(srv, s)
		return srv
	})
	if err != nil {
		return fmt.Errorf("podresources: %w", err)
	}
	s.log.Info("PodResources API listening", "socket", s.socket)
	return nil
}

// Stop ends the server and removes its socket.
func (s *Server) Stop() {
	_ = s.sock.Stop() // a socket that cannot be removed is left, as before
}

// List reports the devices of every active pod's containers (restartable
// init containers and app containers, like the kubelet).
func (s *Server) List(ctx context.Context, _ *podresourcesapi.ListPodResourcesRequest) (*podresourcesapi.ListPodResourcesResponse, error) {
	pods, err := s.opts.Pods.GetPods(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "list pods: %v", err)
	}
	resp := &podresourcesapi.ListPodResourcesResponse{PodResources: []*podresourcesapi.PodResources{}}
	for _, p := range pods {
		if p == nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		resp.PodResources = append(resp.PodResources, s.podResources(p))
	}
	return resp, nil
}

// Get reports one pod.
func (s *Server) Get(ctx context.Context, r *podresourcesapi.GetPodResourcesRequest) (*podresourcesapi.GetPodResourcesResponse, error) {
	pods, err := s.opts.Pods.GetPods(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "list pods: %v", err)
	}
	for _, p := range pods {
		if p != nil && p.Namespace == r.PodNamespace && p.Name == r.PodName {
			return &podresourcesapi.GetPodResourcesResponse{PodResources: s.podResources(p)}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "pod %s in namespace %s not found", r.PodName, r.PodNamespace)
}

// GetAllocatableResources reports every healthy device.
func (s *Server) GetAllocatableResources(ctx context.Context, _ *podresourcesapi.AllocatableResourcesRequest) (*podresourcesapi.AllocatableResourcesResponse, error) {
	return &podresourcesapi.AllocatableResourcesResponse{Devices: containerDevices(s.opts.Devices.AllocatableDevices())}, nil
}

func (s *Server) podResources(p *corev1.Pod) *podresourcesapi.PodResources {
	out := &podresourcesapi.PodResources{Name: p.Name, Namespace: p.Namespace, Containers: []*podresourcesapi.ContainerResources{}}
	add := func(name string) {
		out.Containers = append(out.Containers, &podresourcesapi.ContainerResources{
			Name:    name,
			Devices: containerDevices(s.opts.Devices.ContainerDevices(p.UID, name)),
		})
	}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c.Name)
		}
	}
	for _, c := range p.Spec.Containers {
		add(c.Name)
	}
	return out
}

// containerDevices turns devices into the kubelet's shape: one entry per
// device (and per NUMA node when it has topology), sorted by resource and id.
func containerDevices(devs map[string][]devicemanager.Device) []*podresourcesapi.ContainerDevices {
	var out []*podresourcesapi.ContainerDevices
	for _, res := range slices.Sorted(maps.Keys(devs)) {
		for _, d := range devs[res] {
			if len(d.NUMANodes) == 0 {
				out = append(out, &podresourcesapi.ContainerDevices{ResourceName: res, DeviceIds: []string{d.ID}})
				continue
			}
			for _, n := range d.NUMANodes {
				out = append(out, &podresourcesapi.ContainerDevices{
					ResourceName: res,
					DeviceIds:    []string{d.ID},
					Topology:     &podresourcesapi.TopologyInfo{Nodes: []*podresourcesapi.NUMANode{{ID: n}}},
				})
			}
		}
	}
	return out
}
