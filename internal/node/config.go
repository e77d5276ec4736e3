package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	dto "github.com/prometheus/client_model/go"
	vknode "github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// Defaults of Config.
const (
	DefaultDataDir = "/var/lib/wasilet"
	DefaultPort    = 10250
	// DefaultMaxPods is the pods capacity when none is given. The kubelet
	// defaults to 110 because every container there is a process with a shim;
	// a wasilet pod is a goroutine and a wasmtime store (about 1–2 MB), so a
	// node takes more. 250 is a safe default for small hosts; raise it with
	// --max-pods (1,000 is a supported target) when memory allows.
	DefaultMaxPods = 250
)

// Well-known names of the node object wasilet registers.
const (
	// Arch is both the architecture and the operating system wasilet
	// advertises: a pod lands here only if it asks for wasm32-wasi.
	Arch = "wasm32-wasi"

	LabelArch         = corev1.LabelArchStable         // kubernetes.io/arch
	LabelOS           = corev1.LabelOSStable           // kubernetes.io/os
	LabelHostname     = corev1.LabelHostname           // kubernetes.io/hostname
	LabelInstanceType = corev1.LabelInstanceTypeStable // node.kubernetes.io/instance-type
	LabelRuntime      = "wasilet.dev/runtime"
	RuntimeName       = "wasmtime"

	// TaintKey is the key of both taints (NoSchedule and NoExecute): ordinary
	// Linux pods never land on or stay on a wasilet node.
	TaintKey = LabelArch
)

// Config is everything node.Run needs. Zero values take the documented
// defaults (see Complete).
type Config struct {
	// NodeName is the node object's name and the CN of its certificates
	// (system:node:<NodeName>). Default: the host name, lower-cased.
	NodeName string
	// NodeIP is advertised as the InternalIP address and put in the serving
	// certificate. Default: the first global unicast IPv4 address of the
	// host, or 127.0.0.1 when there is none.
	NodeIP string
	// Address is the listen address of the kubelet API. Default 0.0.0.0.
	Address string
	// Port of the kubelet API (HTTPS), advertised as the kubelet endpoint.
	// Default 10250.
	Port int
	// DataDir holds the certificates (pki/), the written kubeconfig and
	// everything the provider keeps. Default /var/lib/wasilet.
	DataDir string

	// Kubeconfig is the node's credentials. With BootstrapKubeconfig set it
	// is where the bootstrapped kubeconfig is written (default
	// <DataDir>/kubeconfig); without it, it must already exist.
	Kubeconfig string
	// BootstrapKubeconfig, when set, is used to obtain a client certificate
	// through a CSR (signer kubernetes.io/kube-apiserver-client-kubelet) if
	// there is no valid one under <DataDir>/pki.
	BootstrapKubeconfig string

	// ServingCert chooses where the HTTPS certificate of the kubelet API
	// comes from: ServingCertCSR (default) asks the cluster (signer
	// kubernetes.io/kubelet-serving, CSR <node>-tls, approved by an admin) and
	// rotates it; ServingCertSelfSigned makes a self-signed one under
	// <DataDir>/pki (the apiserver does not verify kubelet certificates unless
	// --kubelet-certificate-authority is set). TLSCertFile/TLSKeyFile, when
	// both set, override both.
	ServingCert             ServingCertMode
	TLSCertFile, TLSKeyFile string
	// ClientCAFile verifies client certificates presented to the kubelet API.
	// Default: the certificate authority of the kubeconfig.
	ClientCAFile string

	// Capacity. Zero values take host-derived defaults: CPU = logical CPUs,
	// Memory = MemTotal, Pods = DefaultMaxPods. Allocatable equals capacity.
	CPU     resource.Quantity
	Memory  resource.Quantity
	MaxPods int

	// KubeAPIQPS and KubeAPIBurst limit the node's requests to the API
	// server (and the companions', which share its credentials). Default:
	// the kubelet's, 50 and 100.
	KubeAPIQPS   float32
	KubeAPIBurst int

	// EventQPS and EventBurst limit the events the node posts, on a client
	// of their own (the kubelet's --event-qps and --event-burst). Default:
	// the kubelet's, 50 and 100; a negative EventQPS, no limit.
	EventQPS   float32
	EventBurst int

	// Labels are added to the node's labels (they cannot override the
	// arch/os/hostname/runtime labels).
	Labels map[string]string

	// ExtendedResources, when set, is called at every status update to add
	// extended resources (e.g. device-plugin resources) to capacity and
	// allocatable. ResourceUpdates, when set, triggers an immediate status
	// update each time it receives a value (send after the values returned
	// by ExtendedResources changed). Both may be nil.
	ExtendedResources func() (capacity, allocatable corev1.ResourceList)
	ResourceUpdates   <-chan struct{}

	// NewProvider builds the pod lifecycle provider. Required.
	NewProvider NewProviderFunc

	// HealthChecks are asked at every status update; while any fails the
	// node's Ready condition is False (reason KubeletNotReady) with their
	// messages, as the kubelet's is when its runtime is down. The node
	// itself checks that its data directory is writable.
	HealthChecks []HealthCheck

	// Companions run beside the node once it is registered, with the
	// node's own API credentials (rotated with its certificate), until the
	// node stops — e.g. the in-process Akri agent. An error a companion
	// returns while the node runs stops the node.
	Companions []Companion

	// Logger receives the node's logs (and virtual-kubelet's). Default:
	// slog.Default().
	Logger *slog.Logger
	// Out receives the lines an operator must act on (which CSR to approve).
	// Default os.Stderr.
	Out io.Writer
}

// ServingCertMode selects the source of the kubelet API's certificate.
type ServingCertMode string

// Serving certificate modes.
const (
	ServingCertCSR        ServingCertMode = "csr"
	ServingCertSelfSigned ServingCertMode = "self-signed"
)

// HealthCheck is one part of the node that must work for it to be Ready.
type HealthCheck struct {
	Name  string       // e.g. "runtime", named in the Ready condition's message
	Check func() error // fast: it runs at every status update
}

// Companion is a service that runs beside the node with its credentials.
type Companion func(ctx context.Context, cc CompanionConfig) error

// CompanionConfig is what a companion gets: the node's name, data
// directory and API credentials.
type CompanionConfig struct {
	NodeName string
	DataDir  string
	Rest     *rest.Config
	Logger   *slog.Logger
}

// ProviderConfig is what the node hands to the provider factory.
type ProviderConfig struct {
	// Listers of the informers the pod controller runs, and the node object
	// being registered (the provider may read it; it must not keep it).
	// Pods lists the pods bound to this node and Services every service.
	// ConfigMaps and Secrets are always empty: a node may only read the
	// objects its pods refer to, so the provider GETs them with Client.
	// Pods reach CreatePod with env valueFrom/envFrom unresolved
	// (virtual-kubelet's SkipDownwardAPIResolution): the provider resolves
	// them.
	Pods       corev1listers.PodLister
	ConfigMaps corev1listers.ConfigMapLister
	Secrets    corev1listers.SecretLister
	Services   corev1listers.ServiceLister
	Node       *corev1.Node
	// Client is the node's own client (system:node:<name>).
	Client kubernetes.Interface
	// EventRecorder records events with source {component: wasilet, host: <node>},
	// the same recorder the pod controller uses.
	EventRecorder record.EventRecorder
	NodeName      string
	NodeIP        string
	DataDir       string
	Logger        *slog.Logger
}

// NewProviderFunc builds the pod lifecycle provider. ctx ends when the node
// stops. The provider may also implement node.PodNotifier (asynchronous pod
// status), which virtual-kubelet detects.
type NewProviderFunc func(ctx context.Context, pc ProviderConfig) (Provider, error)

// Provider is what the node drives: virtual-kubelet's pod lifecycle for the
// pod controller, and the kubelet API's pod routes (the same methods as
// virtual-kubelet's nodeutil.Provider, whose package the node does not use).
type Provider interface {
	vknode.PodLifecycleHandler
	GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error)
	RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error
	AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error
	GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error)
	GetMetricsResource(context.Context) ([]*dto.MetricFamily, error)
	PortForward(ctx context.Context, namespace, pod string, port int32, stream io.ReadWriteCloser) error
}

// Complete fills defaults in place and validates the result.
func (c *Config) Complete() error {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Out == nil {
		c.Out = os.Stderr
	}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name: no --node-name and no host name: %w", err)
		}
		c.NodeName = strings.ToLower(h)
	}
	if errs := validation.IsDNS1123Subdomain(c.NodeName); len(errs) > 0 {
		return fmt.Errorf("node name %q is not a valid DNS subdomain: %s", c.NodeName, strings.Join(errs, "; "))
	}
	if c.NodeIP == "" {
		c.NodeIP = defaultNodeIP()
	}
	if net.ParseIP(c.NodeIP) == nil {
		return fmt.Errorf("node IP %q is not an IP address", c.NodeIP)
	}
	if c.Address == "" {
		c.Address = "0.0.0.0"
	}
	if net.ParseIP(c.Address) == nil {
		return fmt.Errorf("listen address %q is not an IP address", c.Address)
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d out of range", c.Port)
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("data dir %q: %w", c.DataDir, err)
	}
	c.DataDir = abs
	if c.BootstrapKubeconfig == "" && c.Kubeconfig == "" {
		return errors.New("no credentials: give --kubeconfig, or --bootstrap-kubeconfig for TLS bootstrap")
	}
	if c.BootstrapKubeconfig != "" && c.Kubeconfig == "" {
		c.Kubeconfig = filepath.Join(c.DataDir, "kubeconfig")
	}
	switch c.ServingCert {
	case "":
		c.ServingCert = ServingCertCSR
	case ServingCertCSR, ServingCertSelfSigned:
	default:
		return fmt.Errorf("serving certificate mode %q: want %q or %q", c.ServingCert, ServingCertCSR, ServingCertSelfSigned)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("--tls-cert-file and --tls-private-key-file go together")
	}
	if c.CPU.IsZero() {
		c.CPU = *resource.NewQuantity(int64(hostCPUs()), resource.DecimalSI)
	}
	if c.CPU.Sign() < 0 {
		return fmt.Errorf("cpu capacity %s is negative", c.CPU.String())
	}
	if c.Memory.IsZero() {
		m, err := hostMemory()
		if err != nil {
			return fmt.Errorf("memory capacity: no --memory and %w", err)
		}
		c.Memory = *resource.NewQuantity(m, resource.BinarySI)
	}
	if c.Memory.Sign() < 0 {
		return fmt.Errorf("memory capacity %s is negative", c.Memory.String())
	}
	if c.MaxPods == 0 {
		c.MaxPods = DefaultMaxPods
	}
	if c.MaxPods < 0 {
		return fmt.Errorf("max pods %d is negative", c.MaxPods)
	}
	for k, v := range c.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return fmt.Errorf("label %s value %q: %s", k, v, strings.Join(errs, "; "))
		}
		if !selfLabelAllowed(k) {
			return fmt.Errorf("label %s: a node may not set labels in the kubernetes.io and k8s.io namespaces besides node.kubernetes.io/, kubelet.kubernetes.io/ and the well-known topology labels (the NodeRestriction admission plugin refuses them); have an admin run `kubectl label node %s %s=%s`", k, c.NodeName, k, v)
		}
	}
	if c.NewProvider == nil {
		return errors.New("no pod provider (Config.NewProvider is nil)")
	}
	return nil
}

func (c *Config) pkiDir() string { return filepath.Join(c.DataDir, "pki") }

// selfLabelAllowed mirrors the kubelet's --node-labels check: labels in the
// kubernetes.io and k8s.io namespaces are only allowed for the few a node may
// set on itself.
func selfLabelAllowed(key string) bool {
	ns, _, ok := strings.Cut(key, "/")
	if !ok {
		return true
	}
	if !(ns == "kubernetes.io" || strings.HasSuffix(ns, ".kubernetes.io") || ns == "k8s.io" || strings.HasSuffix(ns, ".k8s.io")) {
		return true
	}
	switch key {
	case "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
		"beta.kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type",
		"node.kubernetes.io/instance-type", "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
		"failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone":
		return true
	}
	return strings.HasSuffix(ns, "kubelet.kubernetes.io") || strings.HasSuffix(ns, "node.kubernetes.io")
}
