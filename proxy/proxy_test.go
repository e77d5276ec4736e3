package proxy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v0 "github.com/wasilet/wasilet/proto/v0"
	"github.com/wasilet/wasilet/proxy/exchange"
)

// recorder collects what a Discover stream sends.
type recorder struct {
	mu    sync.Mutex
	lists [][]*v0.Device
}

func (r *recorder) send(d []*v0.Device) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lists = append(r.lists, d)
	return nil
}

func (r *recorder) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lists) == 0 {
		return nil
	}
	var ids []string
	for _, d := range r.lists[len(r.lists)-1] {
		ids = append(ids, d.GetId()+"="+d.GetProperties()["DEBUG_ECHO_DESCRIPTION"])
	}
	if ids == nil {
		ids = []string{}
	}
	return ids
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lists)
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logBuf is a log sink tests read while the proxy writes.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func start(t *testing.T, poll time.Duration) (*Proxy, string, *logBuf) {
	t.Helper()
	dir := t.TempDir()
	logs := &logBuf{}
	p, err := New(Options{Dir: dir, Poll: poll, SilenceTimeout: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go p.Run(ctx)
	return p, dir, logs
}

func discover(t *testing.T, p *Proxy, details string) (*recorder, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{}
	go func() { _ = p.Discover(ctx, &v0.DiscoverRequest{DiscoveryDetails: details}, r.send) }()
	t.Cleanup(cancel)
	return r, cancel
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := exchange.WriteFileAtomic(path, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// The original handler's exact output (ids as JSON strings) yields ids
// without quotes; the request is written as the original's JSON.
func TestOriginalFormat(t *testing.T) {
	for _, poll := range []time.Duration{0, 20 * time.Millisecond} {
		p, dir, _ := start(t, poll)
		r, _ := discover(t, p, "descriptions:\n- foo0\n")
		waitFor(t, "in.in written", func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "in.in"))
			return string(b) == `{"descriptions":["foo0"]}`
		})
		write(t, filepath.Join(dir, "out.out"), `{"devices":[{"id":"foo0","properties":{"DEBUG_ECHO_DESCRIPTION":"foo0"},"mounts":[],"device_specs":[]}]}`)
		waitFor(t, "devices sent", func() bool { return strings.Join(r.last(), ",") == "foo0=foo0" })
		if _, err := os.Stat(filepath.Join(dir, "out.out")); err != nil {
			t.Errorf("out.out deleted after reading: %v", err)
		}
	}
}

// Malformed and half-written output is logged and the last good list kept;
// a new Discover stream gets the last good list at once.
func TestMalformedKeepsLastGood(t *testing.T) {
	p, dir, logs := start(t, 0)
	r, _ := discover(t, p, "descriptions: [a, b]")
	waitFor(t, "in.in written", func() bool { _, err := os.Stat(filepath.Join(dir, "in.in")); return err == nil })
	out := filepath.Join(dir, "out.out")
	write(t, out, `{"devices":[{"id":"a","properties":{"DEBUG_ECHO_DESCRIPTION":"a"}},{"id":"b","properties":{"DEBUG_ECHO_DESCRIPTION":"b"}}]}`)
	waitFor(t, "two devices", func() bool { return strings.Join(r.last(), ",") == "a=a,b=b" })
	n := r.count()
	write(t, out, `{"devices":[{"id":"a","prop`)
	waitFor(t, "malformed output logged", func() bool { return strings.Contains(logs.String(), "malformed") })
	if r.count() != n {
		t.Errorf("a list was sent for malformed output: %v", r.last())
	}
	r2, _ := discover(t, p, "descriptions: [a, b]")
	waitFor(t, "last good list re-sent to a new stream", func() bool { return strings.Join(r2.last(), ",") == "a=a,b=b" })
	write(t, out, `{"devices":[]}`)
	waitFor(t, "empty list", func() bool { return r.last() != nil && len(r.last()) == 0 && len(r2.last()) == 0 })
}

// Two distinct requests at once: the first uses the top-level files, the
// second its own sub-directory; neither overwrites the other.
func TestTwoRequests(t *testing.T) {
	p, dir, _ := start(t, 0)
	r1, _ := discover(t, p, "descriptions: [one]")
	waitFor(t, "first request at top level", func() bool { _, err := os.Stat(filepath.Join(dir, "in.in")); return err == nil })
	r2, cancel2 := discover(t, p, "descriptions: [two]")
	sub := filepath.Join(dir, exchange.RequestID([]byte(`{"descriptions":["two"]}`)))
	waitFor(t, "second request in a sub-directory", func() bool {
		b, _ := os.ReadFile(filepath.Join(sub, "in.in"))
		return string(b) == `{"descriptions":["two"]}`
	})
	if b, _ := os.ReadFile(filepath.Join(dir, "in.in")); string(b) != `{"descriptions":["one"]}` {
		t.Fatalf("top-level in.in overwritten: %s", b)
	}
	write(t, filepath.Join(dir, "out.out"), `{"devices":[{"id":"one","properties":{"DEBUG_ECHO_DESCRIPTION":"one"}}]}`)
	write(t, filepath.Join(sub, "out.out"), `{"devices":[{"id":"two","properties":{"DEBUG_ECHO_DESCRIPTION":"two"}}]}`)
	waitFor(t, "each stream its own devices", func() bool {
		return strings.Join(r1.last(), ",") == "one=one" && strings.Join(r2.last(), ",") == "two=two"
	})
	cancel2()
	waitFor(t, "sub-directory removed when its last stream ends", func() bool { _, err := os.Stat(sub); return os.IsNotExist(err) })
}

func TestInvalidDetailsAndSilence(t *testing.T) {
	p, _, logs := start(t, 0)
	err := p.Discover(context.Background(), &v0.DiscoverRequest{DiscoveryDetails: "descriptions: [unclosed"}, func([]*v0.Device) error { return nil })
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad YAML: %v, want InvalidArgument", err)
	}
	discover(t, p, "descriptions: [quiet]")
	waitFor(t, "silence reported", func() bool { return strings.Contains(logs.String(), "has not answered") })
}
