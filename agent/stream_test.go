package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/proto/discoveryhandler"
	v0 "github.com/wasilet/wasilet/proto/v0"
)

// A handler streaming 10,000 devices in one list is received whole and turns
// into 10,000 distinct Instances; a handler that stops and comes back is
// streamed from again (upstream never reopens a closed stream).
func TestStreamLargeListAndReconnect(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "akri-unit-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	const n = 10000
	serve := func(ctx context.Context, count int) {
		go discoveryhandler.Run(ctx, discoveryhandler.Options{Name: "big", Dir: dir, RegisterRetry: 50 * time.Millisecond, Logger: quiet},
			discoveryhandler.DiscovererFunc(func(ctx context.Context, _ *v0.DiscoverRequest, send func([]*v0.Device) error) error {
				devs := make([]*v0.Device, count)
				for i := range devs {
					id := fmt.Sprintf("device-%05d", i)
					devs[i] = &v0.Device{Id: id, Properties: map[string]string{"ID": id}}
				}
				if err := send(devs); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			}))
	}
	hctx, stopHandler := context.WithCancel(context.Background())
	serve(hctx, n)

	var mu sync.Mutex
	var last streamResult
	results := 0
	h := Handler{Name: "big", Endpoint: filepath.Join(dir, "big.sock"), Shared: true}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go stream(ctx, h, &v0.DiscoverRequest{}, nil, func(r streamResult) {
		mu.Lock()
		defer mu.Unlock()
		last = r
		results++
	}, quiet)
	wait := func(what string, f func(streamResult) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			ok := f(last)
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not within 20s: %s (last %d devices, lost %v, err %v)", what, len(last.devices), last.lost, last.err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("10,000 devices", func(r streamResult) bool { return len(r.devices) == n })

	st := &configState{sessions: map[string]*session{h.UID(): {handler: h}}, lists: map[string]*endpointList{}, vanished: map[string]time.Time{}}
	mu.Lock()
	st.report(last)
	mu.Unlock()
	got, settled, _ := st.desired(&akri.Configuration{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}}, "node", DefaultLostGrace)
	names := map[string]bool{}
	for i := range n {
		names[akri.InstanceName("cfg", fmt.Sprintf("device-%05d", i), true, "")] = true
	}
	if len(got) != len(names) || !settled {
		t.Fatalf("%d desired instances (settled %v), want %d", len(got), settled, len(names))
	}
	if collisions := n - len(names); collisions > 0 && st.takeWarning() == "" {
		t.Errorf("%d name collisions among %d devices and no warning", collisions, n)
	}

	// The handler goes away: the stream reports the loss, then finds the
	// handler again when it comes back (with a different list).
	stopHandler()
	wait("stream loss reported", func(r streamResult) bool { return r.lost })
	time.Sleep(100 * time.Millisecond)
	serve(context.Background(), 3)
	wait("stream reopened", func(r streamResult) bool { return len(r.devices) == 3 })
}

// A discovery handler that registers again while its stream is open keeps the
// stream: closing it would make the handler (which registers again whenever
// the agent drops a stream, as upstream's do) register again, and so on. A
// stream that is waiting to reopen tries at once instead.
func TestRegisteringAgainKeepsLiveStream(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "akri-unit-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var mu sync.Mutex
	opened := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go discoveryhandler.Run(ctx, discoveryhandler.Options{Name: "again", Dir: dir, Logger: quiet},
		discoveryhandler.DiscovererFunc(func(ctx context.Context, _ *v0.DiscoverRequest, send func([]*v0.Device) error) error {
			mu.Lock()
			opened++
			mu.Unlock()
			if err := send([]*v0.Device{{Id: "d"}}); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		}))
	h := Handler{Name: "again", Endpoint: filepath.Join(dir, "again.sock"), Shared: true, Generation: 1}
	a := &Agent{log: quiet, configEvents: make(chan event.GenericEvent, 1024)}
	c := &configurations{a: a}
	st := &configState{sessions: map[string]*session{}, lists: map[string]*endpointList{}, vanished: map[string]time.Time{}}
	defer st.stopSessions()
	req := &v0.DiscoverRequest{DiscoveryDetails: "x"}
	streams := func() int {
		mu.Lock()
		defer mu.Unlock()
		return opened
	}
	waitFor := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !f(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not within 10s: %s", what)
			}
		}
	}
	st.sync(c, &akri.Configuration{}, req, []Handler{h})
	waitFor("first stream", func() bool { return streams() == 1 })

	for g := uint64(2); g < 6; g++ {
		h.Generation = g
		st.sync(c, &akri.Configuration{}, req, []Handler{h})
	}
	time.Sleep(300 * time.Millisecond)
	if n := streams(); n != 1 {
		t.Fatalf("registering again opened %d streams, want the first one kept", n)
	}

	// Registering with another shared flag is a different handler: new stream.
	h.Shared, h.Generation = false, 7
	st.sync(c, &akri.Configuration{}, req, []Handler{h})
	waitFor("stream reopened for shared=false", func() bool { return streams() == 2 })
}

// A stream waiting out its back-off reopens as soon as the endpoint registers
// again.
func TestRegisteringAgainCutsBackOff(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "akri-unit-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := Handler{Name: "late", Endpoint: filepath.Join(dir, "late.sock"), Shared: true}
	kick := make(chan struct{}, 1)
	got := make(chan streamResult, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go stream(ctx, h, &v0.DiscoverRequest{}, kick, func(r streamResult) { got <- r }, quiet)
	// Nobody listens yet: the stream fails and backs off (0.5 s, 1 s, 2 s …).
	for range 3 {
		if r := <-got; !r.lost {
			t.Fatalf("want a lost stream, got %+v", r)
		}
	}
	go discoveryhandler.Run(ctx, discoveryhandler.Options{Name: "late", Dir: dir, Logger: quiet},
		discoveryhandler.DiscovererFunc(func(ctx context.Context, _ *v0.DiscoverRequest, send func([]*v0.Device) error) error {
			if err := send([]*v0.Device{{Id: "d"}}); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		}))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(h.Endpoint); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("handler socket never appeared")
		}
	}
	start := time.Now()
	kick <- struct{}{}
	for r := range got {
		if len(r.devices) == 1 {
			break
		}
	}
	// The back-off in progress is 4 s: a prompt answer shows the kick worked.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stream reopened %v after the kick; want at once", d)
	}
}
