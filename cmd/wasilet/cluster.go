package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wasilet/wasilet/internal/cluster"
	"github.com/wasilet/wasilet/internal/runcli"
)

func init() { register(newClusterCommand) }

func newClusterCommand() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run the local control plane (etcd, kube-apiserver, controller-manager, scheduler, registry)",
		Long: `Run a local Kubernetes control plane for the demo and for development, from
the pinned upstream binaries of hack/tools.sh, on 127.0.0.1. Everything it owns
(PKI, kubeconfigs, data, logs, pids) lives in the state directory.`,
	}
	cmd.PersistentFlags().StringVar(&state, "state", ".state", "state directory of the cluster")
	cmd.AddCommand(newClusterUpCommand(&state), newClusterDownCommand(&state), newClusterStatusCommand(&state))
	return cmd
}

func newClusterUpCommand(state *string) *cobra.Command {
	var tools string
	ports := cluster.DefaultPorts()
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the cluster, or reuse it if it runs; prints the KUBECONFIG export",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			c, err := cluster.Up(ctx, cluster.Options{
				StateDir: *state,
				ToolsDir: tools,
				Ports:    ports,
				Log:      cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			w := cmd.ErrOrStderr()
			fmt.Fprintf(w, ">> apiserver %s, registry %s (plain HTTP), logs in %s\n", c.APIServerURL, c.RegistryAddr, c.LogDir())
			fmt.Fprintf(w, ">> bootstrap kubeconfig for nodes: %s\n", c.BootstrapKubeconfig)
			fmt.Fprintf(cmd.OutOrStdout(), "export KUBECONFIG=%s\n", c.AdminKubeconfig)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tools, "tools-dir", "", "directory of the pinned binaries (default $"+cluster.ToolsDirEnv+")")
	f.IntVar(&ports.APIServer, "apiserver-port", ports.APIServer, "kube-apiserver secure port")
	f.IntVar(&ports.Etcd, "etcd-port", ports.Etcd, "etcd client port")
	f.IntVar(&ports.EtcdPeer, "etcd-peer-port", ports.EtcdPeer, "etcd peer port")
	f.IntVar(&ports.ControllerManager, "controller-manager-port", ports.ControllerManager, "kube-controller-manager secure port")
	f.IntVar(&ports.Scheduler, "scheduler-port", ports.Scheduler, "kube-scheduler secure port")
	f.IntVar(&ports.Registry, "registry-port", ports.Registry, "OCI registry port")
	return cmd
}

func newClusterDownCommand(state *string) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the cluster (its state stays for the next up)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cluster.Down(context.Background(), *state); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), ">> cluster in %s stopped\n", *state)
			return nil
		},
	}
}

func newClusterStatusCommand(state *string) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's processes and whether the apiserver is ready (exit 1 if not)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, comps, ready, err := cluster.Status(cmd.Context(), *state)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "COMPONENT\tPID\tSTATE\tLOG")
			for _, s := range comps {
				st, pid := "stopped", "-"
				if s.Running {
					st, pid = "running", fmt.Sprint(s.PID)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.Name, pid, st, s.Log)
			}
			w.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "apiserver %s ready: %v\nregistry: %s\nexport KUBECONFIG=%s\n", c.APIServerURL, ready, c.RegistryAddr, c.AdminKubeconfig)
			if !ready {
				return &runcli.ExitError{Code: 1, Err: fmt.Errorf("cluster in %s is not ready", *state)}
			}
			return nil
		},
	}
}
