package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/wasilet/wasilet/internal/controller"
)

func init() { register(newControllerCommand) }

func newControllerCommand() *cobra.Command {
	var (
		opts       = controller.DefaultOptions()
		kubeconfig string
		logLevel   string
	)
	metricsDefault := "0"
	if p := os.Getenv("METRICS_PORT"); p != "" {
		metricsDefault = ":" + p // upstream's controller serves /metrics on $METRICS_PORT
	}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the Akri controller: broker pods, jobs and services for Instances",
		Long: `Run the Akri controller (compatible with project-akri/akri 0.13's).

For every Akri Instance whose Configuration has a broker spec it runs a broker
Pod on each node in the Instance's nodes (or one Job), replaces brokers that
end or stay Pending, creates the instance and configuration Services while a
broker runs, and removes nodes that are deleted or go NotReady from the
Instances.

Credentials: --kubeconfig, else $KUBECONFIG or ~/.kube/config, else the
in-cluster service account.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, _, err := newLogger(cmd.ErrOrStderr(), logLevel)
			if err != nil {
				return err
			}
			klog.SetSlogLogger(logger)
			ctrllog.SetLogger(logr.FromSlogHandler(logger.Handler()))
			opts.Logger = logger

			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			c, err := controller.New(cfg, opts)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return c.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	f.StringVar(&opts.MetricsBindAddress, "metrics-bind-address", metricsDefault, `address of the Prometheus /metrics endpoint, e.g. :8080; "0" turns it off ($METRICS_PORT, as upstream's, makes it :$METRICS_PORT)`)
	f.StringVar(&opts.HealthProbeBindAddress, "health-probe-bind-address", "0", `address serving /healthz and /readyz, e.g. :8081; "0" turns it off`)
	f.DurationVar(&opts.PendingTimeout, "pending-timeout", opts.PendingTimeout, "how long a broker pod may stay Pending before it is replaced")
	f.StringSliceVar(&opts.Namespaces, "namespace", nil, "serve only these namespaces (comma-separated or repeated; default all)")
	f.BoolVar(&opts.LeaderElection, "leader-elect", false, "elect one active replica through a Lease (for more than one replica)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
