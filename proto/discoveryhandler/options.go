package discoveryhandler

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v0 "github.com/wasilet/wasilet/proto/v0"
)

const (
	// DirEnv names the environment variable holding the directory of the
	// agent's registration socket and of the DHs' sockets.
	DirEnv = "DISCOVERY_HANDLERS_DIRECTORY"
	// PodIPEnv names the environment variable that, when set, makes a DH serve
	// over the network on that address instead of on a unix socket.
	PodIPEnv = "POD_IP"
	// DefaultDir is the directory used when DISCOVERY_HANDLERS_DIRECTORY is unset.
	DefaultDir = "/var/lib/akri"
	// RegistrationSocketName is the agent's registration socket in the directory.
	RegistrationSocketName = "agent-registration.sock"
	// DefaultPort is the TCP port a DH serves on in network mode.
	DefaultPort = 10000
	// DefaultRegisterRetry is how long a DH waits between registration attempts.
	DefaultRegisterRetry = 10 * time.Second
	// DefaultWatchInterval is how often the registration socket is checked for
	// being replaced (an agent restart).
	DefaultWatchInterval = time.Second
)

// Options configures [Run]. The zero value of every field but Name means its
// default.
type Options struct {
	// Name is the DH's name, used in Configurations and in the socket name
	// (for example debugEcho). Required.
	Name string
	// Dir holds the agent's registration socket and, in UDS mode, the DH's own
	// socket <Dir>/<Name>.sock. If empty, DefaultDir is used.
	Dir string
	// Shared tells the agent that the devices can be reached from several nodes.
	Shared bool
	// PodIP, when set, selects network mode: the DH serves on PodIP:Port and
	// registers the NETWORK endpoint http://PodIP:Port.
	PodIP string
	// Port is the TCP port of network mode. If zero, DefaultPort is used.
	Port int
	// RegisterRetry is the wait between failed registration attempts. If zero,
	// DefaultRegisterRetry is used.
	RegisterRetry time.Duration
	// WatchInterval is how often the registration socket is checked for being
	// replaced. If zero, DefaultWatchInterval is used.
	WatchInterval time.Duration
	// Logger receives the DH's lifecycle logs. If nil, slog.Default() is used.
	Logger *slog.Logger
}

// OptionsFromEnv returns Options with Dir and PodIP taken from the environment
// variables DISCOVERY_HANDLERS_DIRECTORY and POD_IP, as upstream DHs read them.
func OptionsFromEnv() Options {
	return Options{Dir: os.Getenv(DirEnv), PodIP: strings.TrimSpace(os.Getenv(PodIPEnv))}
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		return o, errors.New("discovery handler name is required")
	}
	if strings.ContainsAny(o.Name, `/\`) || o.Name == "." || o.Name == ".." {
		return o, fmt.Errorf("invalid discovery handler name %q", o.Name)
	}
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, err
	}
	o.Dir = dir
	if o.PodIP != "" && net.ParseIP(o.PodIP) == nil {
		return o, fmt.Errorf("invalid pod IP %q", o.PodIP)
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Port < 0 || o.Port > 65535 {
		return o, fmt.Errorf("invalid port %d", o.Port)
	}
	if o.RegisterRetry <= 0 {
		o.RegisterRetry = DefaultRegisterRetry
	}
	if o.WatchInterval <= 0 {
		o.WatchInterval = DefaultWatchInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// RegistrationSocket is the path of the agent's registration socket.
func (o Options) RegistrationSocket() string {
	dir := o.Dir
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, RegistrationSocketName)
}

// SocketPath is the DH's own socket in UDS mode: <Dir>/<Name>.sock.
func (o Options) SocketPath() string {
	dir := o.Dir
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, o.Name+".sock")
}

// listenAddress is the address the DH serves on.
func (o Options) listenAddress() (network, address string) {
	if o.PodIP != "" {
		return "tcp", net.JoinHostPort(o.PodIP, strconv.Itoa(o.Port))
	}
	return "unix", o.SocketPath()
}

// registration is the request that announces the DH to the agent.
func (o Options) registration() *v0.RegisterDiscoveryHandlerRequest {
	_, addr := o.listenAddress()
	req := &v0.RegisterDiscoveryHandlerRequest{
		Name:         o.Name,
		Endpoint:     addr,
		EndpointType: v0.RegisterDiscoveryHandlerRequest_UDS,
		Shared:       o.Shared,
	}
	if o.PodIP != "" {
		req.Endpoint = "http://" + addr
		req.EndpointType = v0.RegisterDiscoveryHandlerRequest_NETWORK
	}
	return req
}
