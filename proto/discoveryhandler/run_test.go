package discoveryhandler_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wasilet/wasilet/proto/discoveryhandler"
	v0 "github.com/wasilet/wasilet/proto/v0"
)

const wait = 10 * time.Second

// fakeAgent serves the Registration service on <dir>/agent-registration.sock
// and reports every registration.
type fakeAgent struct {
	v0.UnimplementedRegistrationServer
	srv  *grpc.Server
	reqs chan *v0.RegisterDiscoveryHandlerRequest
}

func startAgent(t *testing.T, dir string) *fakeAgent {
	t.Helper()
	sock := filepath.Join(dir, discoveryhandler.RegistrationSocketName)
	_ = os.Remove(sock)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeAgent{srv: grpc.NewServer(), reqs: make(chan *v0.RegisterDiscoveryHandlerRequest, 16)}
	v0.RegisterRegistrationServer(a.srv, a)
	go a.srv.Serve(lis)
	t.Cleanup(a.srv.Stop)
	return a
}

func (a *fakeAgent) RegisterDiscoveryHandler(_ context.Context, req *v0.RegisterDiscoveryHandlerRequest) (*v0.Empty, error) {
	a.reqs <- req
	return &v0.Empty{}, nil
}

// stop ends the agent and removes its socket, as a dying agent's does.
func (a *fakeAgent) stop() { a.srv.Stop() }

func (a *fakeAgent) registration(t *testing.T) *v0.RegisterDiscoveryHandlerRequest {
	t.Helper()
	select {
	case r := <-a.reqs:
		return r
	case <-time.After(wait):
		t.Fatal("no registration")
		return nil
	}
}

func (a *fakeAgent) noRegistration(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-a.reqs:
		t.Fatalf("unexpected registration %v", r)
	case <-time.After(d):
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// startDH runs a DH in the background for the test's lifetime.
func startDH(t *testing.T, opts discoveryhandler.Options, d discoveryhandler.Discoverer) {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "test"
	}
	if opts.RegisterRetry == 0 {
		opts.RegisterRetry = 100 * time.Millisecond
	}
	if opts.WatchInterval == 0 {
		opts.WatchInterval = 20 * time.Millisecond
	}
	opts.Logger = testLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- discoveryhandler.Run(ctx, opts, d) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Error("Run did not return")
		}
	})
}

// devices is a Discoverer sending lists from a channel.
type devices chan []*v0.Device

func (c devices) Discover(ctx context.Context, _ *v0.DiscoverRequest, send func([]*v0.Device) error) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case l := <-c:
			if err := send(l); err != nil {
				return err
			}
		}
	}
}

func dial(t *testing.T, req *v0.RegisterDiscoveryHandlerRequest) v0.DiscoveryHandlerClient {
	t.Helper()
	target := req.Endpoint
	if req.EndpointType == v0.RegisterDiscoveryHandlerRequest_UDS {
		target = "unix://" + target
	} else {
		target = target[len("http://"):]
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return v0.NewDiscoveryHandlerClient(conn)
}

func recv(t *testing.T, s grpc.ServerStreamingClient[v0.DiscoverResponse]) []*v0.Device {
	t.Helper()
	r, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return r.Devices
}

func TestRegistersAndServes(t *testing.T) {
	dir := t.TempDir()
	agent := startAgent(t, dir)
	c := make(devices, 1)
	startDH(t, discoveryhandler.Options{Name: "debugEcho", Dir: dir, Shared: true}, c)

	req := agent.registration(t)
	want := &v0.RegisterDiscoveryHandlerRequest{
		Name:         "debugEcho",
		Endpoint:     filepath.Join(dir, "debugEcho.sock"),
		EndpointType: v0.RegisterDiscoveryHandlerRequest_UDS,
		Shared:       true,
	}
	if !proto.Equal(req, want) {
		t.Fatalf("registration = %v, want %v", req, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := dial(t, req).Discover(ctx, &v0.DiscoverRequest{DiscoveryDetails: "descriptions: [foo0]"})
	if err != nil {
		t.Fatal(err)
	}
	first := []*v0.Device{{Id: "foo0", Properties: map[string]string{"DEBUG_ECHO_DESCRIPTION": "foo0"}}}
	c <- first
	if got := recv(t, stream); len(got) != 1 || !proto.Equal(got[0], first[0]) {
		t.Fatalf("first update = %v", got)
	}
	c <- nil
	if got := recv(t, stream); len(got) != 0 {
		t.Fatalf("second update = %v, want none", got)
	}
	second := []*v0.Device{{Id: "a", Mounts: []*v0.Mount{{ContainerPath: "/c", HostPath: "/h", ReadOnly: true}},
		DeviceSpecs: []*v0.DeviceSpec{{ContainerPath: "/dev/x", HostPath: "/dev/y", Permissions: "rw"}}}, {Id: "b"}}
	c <- second
	got := recv(t, stream)
	if len(got) != 2 || !proto.Equal(got[0], second[0]) || !proto.Equal(got[1], second[1]) {
		t.Fatalf("third update = %v", got)
	}
}

func TestReplacesStaleSocket(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "test.sock")
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	agent := startAgent(t, dir)
	startDH(t, discoveryhandler.Options{Dir: dir}, make(devices))
	agent.registration(t)
	fi, err := os.Stat(stale)
	if err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("%s: %v, %v; want a socket", stale, fi, err)
	}
}

func TestRemovesSocketOnStop(t *testing.T) {
	dir := t.TempDir()
	agent := startAgent(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- discoveryhandler.Run(ctx, discoveryhandler.Options{Name: "test", Dir: dir, Logger: testLogger(t)}, make(devices))
	}()
	agent.registration(t)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "test.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestRetriesUntilAgentAppears(t *testing.T) {
	dir := t.TempDir()
	// Watching the socket would find the agent at once; only the retry timer
	// is under test here.
	startDH(t, discoveryhandler.Options{Dir: dir, RegisterRetry: 200 * time.Millisecond, WatchInterval: time.Hour}, make(devices))
	time.Sleep(300 * time.Millisecond) // at least one failed attempt
	agent := startAgent(t, dir)
	start := time.Now()
	agent.registration(t)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("registered after %v, want about the retry period", d)
	}
}

func TestRegistersAsSoonAsAgentSocketAppears(t *testing.T) {
	dir := t.TempDir()
	startDH(t, discoveryhandler.Options{Dir: dir, RegisterRetry: time.Hour}, make(devices))
	time.Sleep(100 * time.Millisecond)
	agent := startAgent(t, dir)
	agent.registration(t)
}

func TestReregistersAfterAgentRestart(t *testing.T) {
	dir := t.TempDir()
	agent := startAgent(t, dir)
	startDH(t, discoveryhandler.Options{Dir: dir}, make(devices))
	first := agent.registration(t)
	agent.noRegistration(t, 200*time.Millisecond)

	agent.stop()
	agent = startAgent(t, dir) // a new socket at the same path
	if got := agent.registration(t); !proto.Equal(got, first) {
		t.Fatalf("registration after restart = %v, want %v", got, first)
	}
	agent.noRegistration(t, 200*time.Millisecond)
}

func TestReregistersWhenAgentDropsStream(t *testing.T) {
	dir := t.TempDir()
	agent := startAgent(t, dir)
	c := make(devices, 1)
	startDH(t, discoveryhandler.Options{Dir: dir, WatchInterval: time.Hour}, c)
	req := agent.registration(t)

	ctx, cancel := context.WithCancel(context.Background())
	stream, err := dial(t, req).Discover(ctx, &v0.DiscoverRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c <- []*v0.Device{{Id: "x"}}
	recv(t, stream)
	agent.noRegistration(t, 100*time.Millisecond)
	cancel()
	agent.registration(t)
}

func TestNetworkMode(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	agent := startAgent(t, dir)
	c := make(devices, 1)
	startDH(t, discoveryhandler.Options{Dir: dir, PodIP: "127.0.0.1", Port: port}, c)
	req := agent.registration(t)
	want := &v0.RegisterDiscoveryHandlerRequest{
		Name:         "test",
		Endpoint:     "http://127.0.0.1:" + strconv.Itoa(port),
		EndpointType: v0.RegisterDiscoveryHandlerRequest_NETWORK,
	}
	if !proto.Equal(req, want) {
		t.Fatalf("registration = %v, want %v", req, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "test.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("network mode made a socket: %v", err)
	}
	stream, err := dial(t, req).Discover(context.Background(), &v0.DiscoverRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c <- []*v0.Device{{Id: "net"}}
	if got := recv(t, stream); len(got) != 1 || got[0].Id != "net" {
		t.Fatalf("update = %v", got)
	}
}

// invalidParameter is marked the way errdefs.ErrInvalidArgument is.
type invalidParameter struct{}

func (invalidParameter) Error() string     { return "invalid argument" }
func (invalidParameter) InvalidParameter() {}

func TestDiscoverErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"class marker", fmt.Errorf("parse details: %w", invalidParameter{}), codes.InvalidArgument},
		{"status", status.Error(codes.NotFound, "gone"), codes.NotFound},
		{"wrapped status", fmt.Errorf("x: %w", status.Error(codes.Unavailable, "later")), codes.Unavailable},
		{"plain", errors.New("boom"), codes.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			agent := startAgent(t, dir)
			startDH(t, discoveryhandler.Options{Dir: dir}, discoveryhandler.DiscovererFunc(
				func(context.Context, *v0.DiscoverRequest, func([]*v0.Device) error) error { return tt.err }))
			stream, err := dial(t, agent.registration(t)).Discover(context.Background(), &v0.DiscoverRequest{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			if status.Code(err) != tt.want {
				t.Fatalf("Recv error = %v, want code %v", err, tt.want)
			}
			if err == io.EOF {
				t.Fatal("stream ended without error")
			}
			// The DH failed the request itself: no reason to register again.
			agent.noRegistration(t, 100*time.Millisecond)
		})
	}
}

// validated is a Discoverer with a Validator whose first list never comes.
type validated struct{}

func (validated) Validate(req *v0.DiscoverRequest) error {
	if req.DiscoveryDetails == "bad" {
		return fmt.Errorf("bad details: %w", invalidParameter{})
	}
	return nil
}

func (validated) Discover(ctx context.Context, _ *v0.DiscoverRequest, _ func([]*v0.Device) error) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestValidatorAnswersAtOnce(t *testing.T) {
	dir := t.TempDir()
	agent := startAgent(t, dir)
	startDH(t, discoveryhandler.Options{Dir: dir}, validated{})
	client := dial(t, agent.registration(t))

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stream, err := client.Discover(ctx, &v0.DiscoverRequest{DiscoveryDetails: "good"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("headers: %v", err)
	}

	stream, err = client.Discover(ctx, &v0.DiscoverRequest{DiscoveryDetails: "bad"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Recv error = %v, want InvalidArgument", err)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, o := range []discoveryhandler.Options{
		{},
		{Name: "a/b"},
		{Name: "x", PodIP: "not-an-ip"},
		{Name: "x", Port: 70000},
	} {
		if err := discoveryhandler.Run(context.Background(), o, make(devices)); err == nil {
			t.Errorf("Run(%+v) = nil, want an error", o)
		}
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Setenv(discoveryhandler.DirEnv, "/run/akri")
	t.Setenv(discoveryhandler.PodIPEnv, "10.0.0.7")
	o := discoveryhandler.OptionsFromEnv()
	o.Name = "debugEcho"
	if o.Dir != "/run/akri" || o.PodIP != "10.0.0.7" {
		t.Fatalf("OptionsFromEnv = %+v", o)
	}
	if got := o.RegistrationSocket(); got != "/run/akri/agent-registration.sock" {
		t.Errorf("RegistrationSocket = %s", got)
	}
	if got := o.SocketPath(); got != "/run/akri/debugEcho.sock" {
		t.Errorf("SocketPath = %s", got)
	}
	if got := (discoveryhandler.Options{Name: "x"}).RegistrationSocket(); got != "/var/lib/akri/agent-registration.sock" {
		t.Errorf("default RegistrationSocket = %s", got)
	}
}
