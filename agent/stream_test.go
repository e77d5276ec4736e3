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
	go stream(ctx, h, &v0.DiscoverRequest{}, func(r streamResult) {
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
