package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wasilet/wasilet/handlers/debugecho"
	"github.com/wasilet/wasilet/proto/discoveryhandler"
	"github.com/wasilet/wasilet/proxy"
	"github.com/wasilet/wasilet/proxy/exchange"
)

func init() { register(newProxyCommand) }

func newProxyCommand() *cobra.Command {
	var (
		popts    proxy.Options
		dh       = discoveryhandler.OptionsFromEnv()
		shared   bool
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Bridge a Wasm discovery handler (files in a shared directory) to the Akri agent (gRPC v0)",
		Long: `Register with the Akri agent as a discovery handler and bridge each Discover
request to a discovery handler written as a Wasm module, running as a pod
that mounts the exchange directory (hostPath, default /tmp/wde-dir): the
request's discoveryDetails go to in.in as JSON, the handler's out.out
({"devices":[...]}) comes back as the device list.

Environment as the akri-on-krustlet proxy: DISCOVERY_HANDLER_NAME (default
debugEcho), DISCOVERY_HANDLERS_DIRECTORY, AGENT_NODE_NAME (logged),
DEBUG_ECHO_INSTANCES_SHARED (true|false; the original always said shared).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, _, err := newLogger(cmd.ErrOrStderr(), logLevel)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("shared") {
				if v, ok := os.LookupEnv("DEBUG_ECHO_INSTANCES_SHARED"); ok {
					b, err := strconv.ParseBool(v)
					if err != nil {
						return fmt.Errorf("DEBUG_ECHO_INSTANCES_SHARED=%q: want true or false", v)
					}
					shared = b
				}
			}
			dh.Shared = shared
			dh.Logger = log
			popts.Logger = log
			if dh.Name == debugecho.Name {
				popts.Validate = func(details string) error { _, err := debugecho.ParseDetails(details); return err }
			}
			p, err := proxy.New(popts)
			if err != nil {
				return err
			}
			log.Info("wasilet proxy", "handler", dh.Name, "shared", dh.Shared, "exchange", popts.Dir, "node", os.Getenv("AGENT_NODE_NAME"))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- p.Run(ctx) }()
			if err := discoveryhandler.Run(ctx, dh, discoveryhandler.DiscovererFunc(p.Discover)); err != nil {
				return err
			}
			return <-errc
		},
	}
	name := os.Getenv("DISCOVERY_HANDLER_NAME")
	if name == "" {
		name = "debugEcho"
	}
	f := cmd.Flags()
	f.StringVar(&dh.Name, "name", name, "discovery handler name to register (env DISCOVERY_HANDLER_NAME)")
	f.BoolVar(&shared, "shared", false, "register the devices as shared between nodes (default $DEBUG_ECHO_INSTANCES_SHARED, else false)")
	f.StringVar(&dh.Dir, "discovery-handlers-directory", dh.Dir, "directory of the agent's registration socket and of ours (env DISCOVERY_HANDLERS_DIRECTORY)")
	f.StringVar(&popts.Dir, "exchange-dir", exchange.DefaultDir, "directory shared with the Wasm handler's pod")
	f.DurationVar(&popts.Poll, "poll", 0, "read out.out on this interval instead of watching the directory (0: fsnotify)")
	f.DurationVar(&popts.SilenceTimeout, "silence-timeout", proxy.DefaultSilenceTimeout, "report a request the handler has not answered for this long")
	f.DurationVar(&dh.RegisterRetry, "register-retry", discoveryhandler.DefaultRegisterRetry, "wait between registration attempts while the agent is away")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
