package shim

import (
	"context"

	cshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
)

// Run registers the task service with containerd's plugin registry (as the
// ttrpc plugin "task", on the shim library's event publisher and shutdown
// service) and runs the shim: the `start` and `delete` subcommands, -info,
// -version, or the long-lived server. It does not return on error: it
// exits the process, as shim.RunShim does.
func Run(ctx context.Context) {
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pp, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			return NewTaskService(ic.Context, pp.(cshim.Publisher), ss.(shutdown.Service), ic.Properties[plugins.PropertyGRPCAddress])
		},
	})
	// No child processes: the shim needs to be neither a subreaper nor a
	// reaper.
	cshim.RunShim(ctx, NewManager(), func(c *cshim.Config) {
		c.NoSubreaper = true
		c.NoReaper = true
	})
}
