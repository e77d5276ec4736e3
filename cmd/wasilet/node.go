package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/cri"
	"github.com/wasilet/wasilet/internal/cri/nodesource"
	"github.com/wasilet/wasilet/internal/devicemanager"
	"github.com/wasilet/wasilet/internal/node"
	"github.com/wasilet/wasilet/internal/podresources"
	"github.com/wasilet/wasilet/internal/pods"
	"github.com/wasilet/wasilet/oci"
	"github.com/wasilet/wasilet/runtime"
)

func init() { register(newNodeCommand) }

func newNodeCommand() *cobra.Command {
	var (
		cfg                node.Config
		clusterState       string
		cpu, memory        string
		labels             []string
		insecureRegistries []string
		selfSigned         bool
		logLevel           string
		criSocket          string
		akriAgent          bool
		maxOpenFiles       int
		tiered             bool
		af                 agentFlags
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a wasm32-wasi Kubernetes node: register, run Wasm pods in wasmtime, serve the kubelet API",
		Long: `Run a wasm32-wasi Kubernetes node.

The node registers with the cluster (labels kubernetes.io/arch=wasm32-wasi and
kubernetes.io/os=wasm32-wasi, taints kubernetes.io/arch=wasm32-wasi with
effects NoSchedule and NoExecute), heartbeats through a Lease in
kube-node-lease, runs every pod bound to it in wasmtime and serves the
kubelet API (logs, /pods, /stats/summary) over HTTPS.

Credentials: --kubeconfig, or --bootstrap-kubeconfig for TLS bootstrap like
the kubelet: a client CSR (auto-approved by clusters set up for TLS
bootstrapping), then a serving CSR named <node>-tls which an admin approves:

  kubectl certificate approve <node>-tls

--cluster-state DIR joins the local cluster of ` + "`wasilet cluster up`" + ` (its bootstrap
kubeconfig, node IP and listen address 127.0.0.1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, _, err := newLogger(cmd.ErrOrStderr(), logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			cfg.Out = cmd.ErrOrStderr()

			if clusterState != "" {
				c, err := cluster.Load(clusterState)
				if err != nil {
					return fmt.Errorf("--cluster-state: %w (start it with `wasilet cluster up --state %s`)", err, clusterState)
				}
				if cfg.BootstrapKubeconfig == "" && cfg.Kubeconfig == "" {
					cfg.BootstrapKubeconfig = c.BootstrapKubeconfig
				}
				if cfg.NodeIP == "" {
					cfg.NodeIP = "127.0.0.1"
				}
				if cfg.Address == "" {
					cfg.Address = "127.0.0.1"
				}
			}
			if cpu != "" {
				if cfg.CPU, err = resource.ParseQuantity(cpu); err != nil {
					return fmt.Errorf("--cpu %q: %w", cpu, err)
				}
			}
			if memory != "" {
				if cfg.Memory, err = resource.ParseQuantity(memory); err != nil {
					return fmt.Errorf("--memory %q: %w", memory, err)
				}
			}
			if len(labels) > 0 {
				cfg.Labels = map[string]string{}
				for _, l := range labels {
					k, v, ok := strings.Cut(l, "=")
					if !ok || k == "" {
						return fmt.Errorf("--node-labels: %q is not key=value", l)
					}
					cfg.Labels[k] = v
				}
			}
			if selfSigned {
				cfg.ServingCert = node.ServingCertSelfSigned
			}

			w := &podsWiring{insecureRegistries: insecureRegistries, criSocket: criSocket, maxOpenFiles: maxOpenFiles, tiered: tiered, log: cfg.Logger}
			defer w.close()
			cfg.NewProvider = w.newProvider

			dataDir := cfg.DataDir
			if dataDir == "" {
				dataDir = node.DefaultDataDir
			}
			dm, err := devicemanager.New(devicemanager.Options{Dir: filepath.Join(dataDir, "device-plugins"), Logger: cfg.Logger})
			if err != nil {
				return err
			}
			if err := dm.Start(); err != nil {
				return err
			}
			defer dm.Stop()
			w.devices = dm
			cfg.ExtendedResources = dm.ExtendedResources
			cfg.HealthChecks = append(cfg.HealthChecks,
				node.HealthCheck{Name: "device manager", Check: dm.Check},
				node.HealthCheck{Name: "runtime", Check: w.checkRuntime})
			cfg.ResourceUpdates = dm.Updates()

			if akriAgent {
				cfg.Companions = append(cfg.Companions, runAgent(&af))
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return node.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.NodeName, "node-name", "", "name of the node object (default: the host name)")
	f.StringVar(&cfg.NodeIP, "node-ip", "", "InternalIP address to advertise (default: first global IPv4 address, else 127.0.0.1; 127.0.0.1 with --cluster-state)")
	f.StringVar(&cfg.Address, "address", "", "listen address of the kubelet API (default 0.0.0.0; 127.0.0.1 with --cluster-state)")
	f.IntVar(&cfg.Port, "port", node.DefaultPort, "port of the kubelet API (HTTPS)")
	f.StringVar(&cfg.DataDir, "data-dir", node.DefaultDataDir, "directory for certificates, images, compiled modules and pod state")
	f.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of the node; with --bootstrap-kubeconfig, where the bootstrapped one is written (default <data-dir>/kubeconfig)")
	f.StringVar(&cfg.BootstrapKubeconfig, "bootstrap-kubeconfig", "", "kubeconfig with a bootstrap token for TLS bootstrap")
	f.StringVar(&clusterState, "cluster-state", "", "state directory of a local cluster (wasilet cluster up) to join")
	f.StringVar(&cfg.ClientCAFile, "client-ca-file", "", "CA bundle verifying client certificates on the kubelet API (default: the kubeconfig's CA)")
	f.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "serving certificate of the kubelet API (instead of a CSR)")
	f.StringVar(&cfg.TLSKeyFile, "tls-private-key-file", "", "key of --tls-cert-file")
	f.BoolVar(&selfSigned, "self-signed-serving-cert", false, "serve the kubelet API with a self-signed certificate instead of asking the cluster for one")
	f.Float32Var(&cfg.KubeAPIQPS, "kube-api-qps", 50, "requests per second to the API server, for the node and its in-process agent")
	f.IntVar(&cfg.KubeAPIBurst, "kube-api-burst", 100, "burst of requests to the API server above --kube-api-qps")
	f.Float32Var(&cfg.EventQPS, "event-qps", 50, "events per second the node posts, on a client of their own (negative: no limit)")
	f.IntVar(&cfg.EventBurst, "event-burst", 100, "burst of events above --event-qps")
	f.BoolVar(&tiered, "tiered-compilation", false, "start a module no cache has on a quick compile (about half the compile time; its code runs about half as fast, for as long as that container runs) while the full compile runs in the background for later starts")
	f.IntVar(&maxOpenFiles, "max-open-files-per-container", pods.DefaultMaxOpenFiles, "open files one container may hold (they are the node's own): a container past it is stopped with reason TooManyOpenFiles")
	f.IntVar(&cfg.MaxPods, "max-pods", node.DefaultMaxPods, "pods capacity of the node")
	f.StringVar(&cpu, "cpu", "", "cpu capacity (default: the host's logical CPUs)")
	f.StringVar(&memory, "memory", "", "memory capacity, e.g. 4Gi (default: the host's memory)")
	f.StringSliceVar(&labels, "node-labels", nil, "extra node labels key=value (comma-separated or repeated)")
	f.StringSliceVar(&insecureRegistries, "insecure-registry", nil, "registry host[:port] reached over plain HTTP (loopback registries always are)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.BoolVar(&akriAgent, "akri-agent", true, "run the Akri agent in-process (discovery handlers → Instances → device plugins at this node's kubelet.sock)")
	af.add(f, false)
	f.StringVar(&criSocket, "cri-socket", "", "unix socket of the read-only CRI endpoint for crictl (default <data-dir>/cri.sock; \"none\" disables it)")
	return cmd
}

// podsWiring builds the pod provider from the node's data directory: one
// wasmtime engine (compiled cache in <data-dir>/cache), the OCI store
// (<data-dir>/oci), and internal/pods on top.
type podsWiring struct {
	insecureRegistries []string
	criSocket          string
	maxOpenFiles       int
	tiered             bool
	log                *slog.Logger
	devices            *devicemanager.Manager
	podResources       *podresources.Server
	cri                *cri.Server
	engine             *runtime.Engine
	checked            atomic.Pointer[runtime.Engine] // engine, for the status loop's health check
	store              *oci.Store
	provider           *pods.Provider
}

func (w *podsWiring) newProvider(_ context.Context, pc node.ProviderConfig) (node.Provider, error) {
	var err error
	if w.engine, err = runtime.NewEngine(runtime.Options{CacheDir: filepath.Join(pc.DataDir, "cache"), Tiered: w.tiered}); err != nil {
		return nil, fmt.Errorf("wasmtime engine: %w", err)
	}
	w.checked.Store(w.engine)
	if w.store, err = oci.NewStore(filepath.Join(pc.DataDir, "oci")); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	var allocatable corev1.ResourceList
	if pc.Node != nil {
		allocatable = pc.Node.Status.Allocatable.DeepCopy()
	}
	w.provider, err = pods.New(pods.Config{
		NodeName:     pc.NodeName,
		NodeIP:       pc.NodeIP,
		DataDir:      pc.DataDir,
		Client:       pc.Client,
		Recorder:     pc.EventRecorder,
		Runtime:      pods.EngineRuntime{Engine: w.engine},
		Images:       &pods.OCIImages{Store: w.store, Remote: oci.RemoteOptions{InsecureRegistries: w.insecureRegistries}},
		Allocatable:  allocatable,
		Devices:      w.devices,
		MaxOpenFiles: w.maxOpenFiles,
	})
	if err != nil {
		return nil, fmt.Errorf("pods: %w", err)
	}
	if w.podResources, err = podresources.New(podresources.Options{Dir: filepath.Join(pc.DataDir, "pod-resources"), Pods: w.provider, Devices: w.devices, Logger: w.log}); err != nil {
		return nil, err
	}
	if err := w.podResources.Start(); err != nil {
		return nil, err
	}
	if w.criSocket != "none" {
		sock := w.criSocket
		if sock == "" {
			sock = filepath.Join(pc.DataDir, "cri.sock")
		}
		if w.cri, err = cri.New(cri.Options{Socket: sock, Pods: nodesource.Pods(w.provider), Images: nodesource.Images(w.store, w.log), ImageFsDir: filepath.Join(pc.DataDir, "oci"), Logger: w.log}); err != nil {
			return nil, err
		}
		if err := w.cri.Start(); err != nil {
			return nil, err
		}
	}
	return w.provider, nil
}

// checkRuntime is the runtime's health check: the engine once the node
// built it (before, the node is not registered and nobody asks).
func (w *podsWiring) checkRuntime() error {
	e := w.checked.Load()
	if e == nil {
		return nil
	}
	return e.Check()
}

func (w *podsWiring) close() {
	if w.cri != nil {
		w.cri.Stop()
	}
	if w.podResources != nil {
		w.podResources.Stop()
	}
	if w.provider != nil {
		_ = w.provider.Close()
	}
	if w.engine != nil {
		_ = w.engine.Close()
	}
	if w.store != nil {
		_ = w.store.Close()
	}
}
