package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wasilet/wasilet/agent"
	"github.com/wasilet/wasilet/internal/node"
	"github.com/wasilet/wasilet/oci"
	"github.com/wasilet/wasilet/runtime"
)

func init() { register(newAgentCommand) }

// agentFlags are the Akri agent's settings, shared by `wasilet agent` and
// the agent `wasilet node` runs in-process.
type agentFlags struct {
	opts              agent.Options
	discoveryHandlers string
	componentHandlers []string
	componentDir      string
}

func (f *agentFlags) add(fs *pflag.FlagSet, standalone bool) {
	fs.StringVar(&f.discoveryHandlers, "discovery-handlers-directory", os.Getenv("DISCOVERY_HANDLERS_DIRECTORY"),
		"directory of agent-registration.sock and the handlers' sockets (env DISCOVERY_HANDLERS_DIRECTORY; default "+agent.DefaultDiscoveryHandlersDir+")")
	fs.IntVar(&f.opts.MaxDevicePlugins, "max-device-plugins", 0, "most Instance device plugins served at once; Instances past it wait with a Warning Event (0: from the open-file limit)")
	fs.DurationVar(&f.opts.OfflineGrace, "offline-grace", 0, "keep a shared device that is no longer discovered this long before leaving its Instance (0: at once, as Akri 0.13)")
	fs.StringArrayVar(&f.componentHandlers, "component-handler", nil,
		"a discovery handler that is a Wasm component of akri:discovery@"+agent.WITVersion+", hosted in-process (repeatable): "+
			"NAME=REF[,shared][,dir=HOST:GUEST[:ro]][,http=HOST[;HOST]][,memory=128Mi][,timeout=5s][,watch=10s]; "+
			"REF is an OCI reference or a .wasm path; Configurations name it in discoveryHandler.name")
	if standalone {
		fs.StringVar(&f.componentDir, "component-data-dir", "/var/lib/wasilet-agent", "OCI store (oci/) and compiled cache (cache/) of component handlers")
		fs.StringVar(&f.opts.DevicePluginsDir, "device-plugins-dir", agent.DefaultDevicePluginsDir, "the kubelet's device-plugin directory (kubelet.sock)")
		fs.StringVar(&f.opts.PodResourcesSocket, "pod-resources-socket", agent.DefaultPodResourcesSocket, "the kubelet's PodResources socket, read by the slot reclaimer")
		metrics := "0"
		if p := os.Getenv("METRICS_PORT"); p != "" {
			metrics = ":" + p
		}
		fs.StringVar(&f.opts.MetricsBindAddress, "metrics-bind-address", metrics, `address of the Prometheus /metrics endpoint, e.g. :8080; "0" turns it off (default from $METRICS_PORT)`)
	}
}

func (f *agentFlags) options(log *slog.Logger, node string, rc *rest.Config) agent.Options {
	o := f.opts
	o.NodeName = node
	o.Config = rc
	o.Logger = log
	o.DiscoveryHandlersDir = f.discoveryHandlers
	return o
}

// components parses --component-handler and, if any is given, sets up
// their host: a runtime engine and OCI store under dir. The returned close
// releases them.
func (f *agentFlags) components(o *agent.Options, dir string) (func(), error) {
	if len(f.componentHandlers) == 0 {
		return func() {}, nil
	}
	for _, s := range f.componentHandlers {
		h, err := agent.ParseComponentHandler(s)
		if err != nil {
			return nil, err
		}
		o.ComponentHandlers = append(o.ComponentHandlers, h)
	}
	engine, err := runtime.NewEngine(runtime.Options{CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		return nil, fmt.Errorf("component handlers: %w", err)
	}
	store, err := oci.NewStore(filepath.Join(dir, "oci"))
	if err != nil {
		engine.Close()
		return nil, fmt.Errorf("component handlers: %w", err)
	}
	o.ComponentHost = agent.ComponentHost{Engine: engine, Fetch: func(ctx context.Context, ref string) ([]byte, string, error) {
		if strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "./") {
			b, err := os.ReadFile(ref)
			return b, "", err
		}
		a, err := store.Pull(ctx, ref, oci.PullOptions{Policy: oci.PullIfNotPresent})
		if err != nil {
			return nil, "", err
		}
		wasm, err := a.ReadWasm()
		if err != nil {
			return nil, "", err
		}
		return wasm, a.Layer.Digest.String(), nil
	}}
	return func() { store.Close(); engine.Close() }, nil
}

func newAgentCommand() *cobra.Command {
	var (
		af         agentFlags
		kubeconfig string
		nodeName   string
		logLevel   string
		qps        float32
		burst      int
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the Akri agent: discovery handlers → Instances → device plugins at the kubelet",
		Long: `Run the Akri agent of one node (wire- and API-compatible with Akri 0.13).

Discovery handlers register at <discovery-handlers-directory>/agent-registration.sock
(gRPC v0); for every Configuration the agent streams their device lists, keeps
one Instance per device (akri.sh/v0, server-side apply as the node) and serves
a device plugin per Instance (akri.sh/<instance>) and per Configuration
(akri.sh/<configuration>) at the kubelet's socket. Any kubelet works; ` + "`wasilet node`" + `
runs this agent in-process by default.

Environment as Akri: AGENT_NODE_NAME (required unless --node-name),
DISCOVERY_HANDLERS_DIRECTORY, KUBECONFIG (else in-cluster).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, _, err := newLogger(cmd.ErrOrStderr(), logLevel)
			if err != nil {
				return err
			}
			if nodeName == "" {
				return fmt.Errorf("no node name: set AGENT_NODE_NAME or --node-name")
			}
			rc, err := restConfig(kubeconfig)
			if err != nil {
				return err
			}
			rc.QPS, rc.Burst = qps, burst
			o := af.options(log, nodeName, rc)
			closeComponents, err := af.components(&o, af.componentDir)
			if err != nil {
				return err
			}
			defer closeComponents()
			a, err := agent.New(o)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	af.add(f, true)
	f.StringVar(&nodeName, "node-name", os.Getenv("AGENT_NODE_NAME"), "this node's name (env AGENT_NODE_NAME)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig (default $KUBECONFIG, else in-cluster)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.Float32Var(&qps, "kube-api-qps", 50, "requests per second to the API server")
	f.IntVar(&burst, "kube-api-burst", 100, "burst of requests to the API server above --kube-api-qps")
	return cmd
}

// restConfig loads a kubeconfig: the flag, else $KUBECONFIG / ~/.kube/config,
// else the in-cluster service account.
func restConfig(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return rc, nil
}

// runAgent is the node's companion running the agent in-process, against
// the node's own device-plugin manager and PodResources (through their
// sockets, like any plugin).
func runAgent(af *agentFlags) node.Companion {
	return func(ctx context.Context, cc node.CompanionConfig) error {
		o := af.options(cc.Logger, cc.NodeName, cc.Rest)
		o.DevicePluginsDir = filepath.Join(cc.DataDir, "device-plugins")
		o.PodResourcesSocket = filepath.Join(cc.DataDir, "pod-resources", "kubelet.sock")
		closeComponents, err := af.components(&o, filepath.Join(cc.DataDir, "akri-components"))
		if err != nil {
			return err
		}
		defer closeComponents()
		a, err := agent.New(o)
		if err != nil {
			return err
		}
		return a.Run(ctx)
	}
}
