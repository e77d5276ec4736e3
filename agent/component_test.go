package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v0 "github.com/wasilet/wasilet/proto/v0"
	wrt "github.com/wasilet/wasilet/runtime"
)

// testSource is a component source for the component wasm, with its own
// engine.
func testSource(t *testing.T, spec ComponentHandler, wasm []byte) *componentSource {
	t.Helper()
	e, err := wrt.NewEngine(wrt.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if spec.Name == "" {
		spec.Name = "test"
	}
	if spec.Ref == "" {
		spec.Ref = "./test.wasm"
	}
	s, err := newComponentSource(spec, ComponentHost{Engine: e, Fetch: func(context.Context, string) ([]byte, string, error) {
		return wasm, "", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// builtHandler is a component handler built by hack/wasm.sh
// (WASILET_WASM_DIR); tests that need one skip without it.
func builtHandler(t *testing.T, name string) []byte {
	t.Helper()
	dir := os.Getenv("WASILET_WASM_DIR")
	if dir == "" {
		t.Skip("WASILET_WASM_DIR not set (run hack/wasm.sh)")
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".component.wasm"))
	if err != nil {
		t.Skipf("component handler not built: %v", err)
	}
	return b
}

// TestHTTPGetEndsWithCall: an HTTP request of a handler ends with the
// watch call that made it (its time limit, or the stream's end), not after
// the agent's own HTTP timeout: a host call cannot keep a handler past its
// limit.
func TestHTTPGetEndsWithCall(t *testing.T) {
	hostile := builtHandler(t, "hostile-component")
	for _, tc := range []struct {
		name   string
		cancel time.Duration // when the stream ends; 0: never
		limit  time.Duration // by when discover must have returned
	}{
		{"time limit", 0, 2*time.Second + 3*time.Second},
		{"stream cancelled", 300 * time.Millisecond, 300*time.Millisecond + 3*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gone := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select { // hangs until the client gives up
				case <-r.Context().Done():
					close(gone)
				case <-time.After(2 * httpTimeout):
				}
			}))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			s := testSource(t, ComponentHandler{Name: "hostile", HTTPHosts: []string{host}, CallLimit: time.Second, Watch: time.Second}, hostile)
			if _, err := s.load(context.Background()); err != nil { // compiled before the clock starts
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel > 0 {
				time.AfterFunc(tc.cancel, cancel)
			}
			start := time.Now()
			err := s.discover(ctx, &v0.DiscoverRequest{DiscoveryDetails: "http " + srv.URL + "/hang"}, func([]*v0.Device) { t.Error("devices sent") })
			took := time.Since(start)
			if took > tc.limit {
				t.Fatalf("discover returned after %v (%v), want within %v", took, err, tc.limit)
			}
			if tc.cancel > 0 {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("got %v, want context.Canceled", err)
				}
			} else if se := (*sourceError)(nil); !errors.As(err, &se) || !strings.Contains(err.Error(), "time limit") {
				t.Fatalf("got %v, want a sourceError naming the time limit", err)
			}
			select {
			case <-gone:
			case <-time.After(time.Second):
				t.Fatal("the request was not cancelled")
			}
			t.Logf("returned after %v: %v", took, err)
		})
	}
}
