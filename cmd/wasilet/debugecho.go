package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/grpclog"

	"github.com/wasilet/wasilet/handlers/debugecho"
	"github.com/wasilet/wasilet/proto/discoveryhandler"
	v0 "github.com/wasilet/wasilet/proto/v0"
)

func init() { register(newDebugEchoCommand) }

func newDebugEchoCommand() *cobra.Command {
	var (
		opts     = discoveryhandler.OptionsFromEnv()
		watch    debugecho.WatchOptions
		shared   bool
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "debug-echo",
		Short: "Run Akri's debugEcho discovery handler as a native process",
		Long: `debug-echo is Akri's debugEcho discovery handler: it registers with the Akri
agent of the node and, for each Configuration naming it, reports one device per
entry of its discoveryDetails (descriptions: [foo0, foo1]), with the property
DEBUG_ECHO_DESCRIPTION; none while the availability file contains OFFLINE.

It serves on <dir>/<name>.sock, or on $POD_IP:10000 when POD_IP is set, and
registers on <dir>/agent-registration.sock, where <dir> is
$DISCOVERY_HANDLERS_DIRECTORY (default /var/lib/akri).

Whether its devices are shared between nodes comes from --shared, else from
DEBUG_ECHO_INSTANCES_SHARED (true or false); unlike upstream, which requires
the variable, an unset one means false, with a warning.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, level, err := newLogger(cmd.ErrOrStderr(), logLevel)
			if err != nil {
				return err
			}
			if level > slog.LevelDebug {
				// gRPC logs each failed dial of the agent's socket; our log
				// already says the agent is not there. Keep its errors only.
				grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, cmd.ErrOrStderr()))
			}
			if !cmd.Flags().Changed("shared") {
				v, ok := os.LookupEnv(debugecho.SharedEnv)
				if !ok {
					log.Warn(debugecho.SharedEnv + " is not set; registering devices as not shared")
				} else if b, err := strconv.ParseBool(v); err != nil {
					return fmt.Errorf("%s=%q: want true or false", debugecho.SharedEnv, v)
				} else {
					shared = b
				}
			}
			opts.Shared = shared
			opts.Logger = log
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return discoveryhandler.Run(ctx, opts, debugEchoDiscoverer{watch})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", debugecho.Name, "name to register with the agent")
	f.BoolVar(&shared, "shared", false, "register the devices as shared between nodes (default $"+debugecho.SharedEnv+")")
	f.StringVar(&opts.Dir, "discovery-handlers-directory", opts.Dir, "directory of the agent's registration socket and of ours (default $"+discoveryhandler.DirEnv+" or "+discoveryhandler.DefaultDir+")")
	f.StringVar(&opts.PodIP, "pod-ip", opts.PodIP, "serve on this IP, port 10000, instead of a unix socket (default $"+discoveryhandler.PodIPEnv+")")
	f.StringVar(&watch.AvailabilityFile, "availability-file", debugecho.DefaultAvailabilityFile, "devices are offline while this file contains "+debugecho.Offline)
	f.DurationVar(&watch.PollInterval, "poll-interval", debugecho.DefaultPollInterval, "how often to read the availability file")
	f.DurationVar(&opts.RegisterRetry, "register-retry", discoveryhandler.DefaultRegisterRetry, "wait between registration attempts while the agent is away")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// debugEchoDiscoverer serves debugecho over proto/discoveryhandler.
type debugEchoDiscoverer struct{ watch debugecho.WatchOptions }

var (
	_ discoveryhandler.Discoverer = debugEchoDiscoverer{}
	_ discoveryhandler.Validator  = debugEchoDiscoverer{}
)

func (d debugEchoDiscoverer) Validate(req *v0.DiscoverRequest) error {
	_, err := debugecho.ParseDetails(req.GetDiscoveryDetails())
	return err
}

func (d debugEchoDiscoverer) Discover(ctx context.Context, req *v0.DiscoverRequest, send func([]*v0.Device) error) error {
	details, err := debugecho.ParseDetails(req.GetDiscoveryDetails())
	if err != nil {
		return err
	}
	return debugecho.Watch(ctx, details.Descriptions, d.watch, func(devs []debugecho.Device) error {
		out := make([]*v0.Device, len(devs))
		for i, dev := range devs {
			out[i] = &v0.Device{Id: dev.ID, Properties: dev.Properties}
		}
		return send(out)
	})
}
