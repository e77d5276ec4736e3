package agent

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	// Only to write test components in the text format (the agent itself
	// reaches wasmtime through package runtime alone).
	"github.com/bytecodealliance/wasmtime-go/v39"

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

func wat(t *testing.T, text string) []byte {
	t.Helper()
	b, err := wasmtime.Wat2Wasm(text)
	if err != nil {
		t.Fatalf("wat2wasm: %v", err)
	}
	return b
}

func TestCheckImports(t *testing.T) {
	const forbidden = "not granted: a discovery handler may import only"
	tests := []struct {
		name    string
		imports []string
		want    string // "" = granted; else a substring of the error
	}{
		{"none", nil, ""},
		{"jco reactor adapter", []string{
			"wasi:cli/environment@0.2.12", "wasi:cli/exit@0.2.12", "wasi:io/error@0.2.12", "wasi:io/poll@0.2.12",
			"wasi:io/streams@0.2.12", "wasi:cli/stdin@0.2.12", "wasi:cli/stdout@0.2.12", "wasi:cli/stderr@0.2.12",
			"wasi:cli/terminal-input@0.2.12", "wasi:cli/terminal-output@0.2.12", "wasi:cli/terminal-stdin@0.2.12",
			"wasi:cli/terminal-stdout@0.2.12", "wasi:cli/terminal-stderr@0.2.12", "wasi:clocks/monotonic-clock@0.2.12",
			"wasi:clocks/wall-clock@0.2.12", "wasi:filesystem/types@0.2.12", "wasi:filesystem/preopens@0.2.12",
			"wasi:random/random@0.2.12", "wasi:random/insecure@0.2.0",
		}, ""},
		{"akri types and http", []string{"akri:discovery/types@0.1.0", "akri:discovery/http@0.1.3"}, ""},
		{"tcp", []string{"wasi:io/streams@0.2.0", "wasi:sockets/tcp@0.2.0"}, "import wasi:sockets/tcp@0.2.0 " + forbidden},
		{"name lookup", []string{"wasi:sockets/ip-name-lookup@0.2.0"}, "import wasi:sockets/ip-name-lookup@0.2.0 not granted"},
		{"several", []string{"wasi:sockets/udp@0.2.0", "wasi:clocks/wall-clock@0.2.0", "wasi:http/outgoing-handler@0.2.0"},
			"imports wasi:sockets/udp@0.2.0, wasi:http/outgoing-handler@0.2.0 not granted"},
		{"cli beyond stdio", []string{"wasi:cli/run@0.2.0"}, "import wasi:cli/run@0.2.0 not granted"},
		{"WASI 0.3", []string{"wasi:clocks/wall-clock@0.3.0"}, "import wasi:clocks/wall-clock@0.3.0 not granted"},
		{"no version", []string{"wasi:clocks/wall-clock"}, "not granted"},
		{"plain name", []string{"get"}, "import get not granted"},
		{"akri handler import", []string{"akri:discovery/handler@0.1.0"}, "not granted"},
		{"akri other version", []string{"akri:discovery/http@0.2.0"}, "not granted"},
		{"akri bad version", []string{"akri:discovery/http@x"}, "not granted"},
		{"other package", []string{"acme:evil/ports@0.2.0"}, "not granted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkImports(tc.imports)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestComponentImportRefused: a handler importing wasi:sockets (which the
// runtime's WASI linker would satisfy) is refused before it is
// instantiated, with an error that names the interface and reaches the
// Event path (a sourceError); one importing only what is granted loads.
func TestComponentImportRefused(t *testing.T) {
	sockets := wat(t, `(component
	  (import "wasi:clocks/wall-clock@0.2.0" (instance))
	  (import "wasi:sockets/ip-name-lookup@0.2.0" (instance))
	  (instance $h)
	  (export "akri:discovery/handler@0.1.0" (instance $h)))`)
	s := testSource(t, ComponentHandler{Name: "sockets"}, sockets)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.discover(ctx, &v0.DiscoverRequest{}, func([]*v0.Device) { t.Error("devices sent") })
	var se *sourceError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a sourceError", err)
	}
	const want = "component handler sockets: import wasi:sockets/ip-name-lookup@0.2.0 not granted: "
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %q, want it to start with %q", err, want)
	}

	granted := wat(t, `(component
	  (import "wasi:clocks/wall-clock@0.2.0" (instance))
	  (import "akri:discovery/types@0.1.0" (instance))
	  (instance $h)
	  (export "akri:discovery/handler@0.1.0" (instance $h)))`)
	if _, err := testSource(t, ComponentHandler{}, granted).load(ctx); err != nil {
		t.Fatalf("granted imports refused: %v", err)
	}
}

// TestBuiltHandlersImportsGranted: the Go handlers built by hack/wasm.sh
// (through jco's preview1 reactor adapter) import only what is granted.
func TestBuiltHandlersImportsGranted(t *testing.T) {
	for _, name := range []string{"debug-echo-component", "http-inventory-component", "hostile-component"} {
		t.Run(name, func(t *testing.T) {
			s := testSource(t, ComponentHandler{Name: name}, builtHandler(t, name))
			if _, err := s.load(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
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

func TestParseComponentHandler(t *testing.T) {
	tests := []struct {
		flag    string
		want    ComponentHandler
		wantErr string
	}{
		{flag: "debugEcho=127.0.0.1:5000/debug-echo-component:v1",
			want: ComponentHandler{Name: "debugEcho", Ref: "127.0.0.1:5000/debug-echo-component:v1"}},
		{flag: "h=./h.wasm,shared", want: ComponentHandler{Name: "h", Ref: "./h.wasm", Shared: true}},
		{flag: "h=./h.wasm,shared=true", want: ComponentHandler{Name: "h", Ref: "./h.wasm", Shared: true}},
		{flag: "h=./h.wasm,shared,shared=false", want: ComponentHandler{Name: "h", Ref: "./h.wasm"}},
		{flag: "h=/h.wasm,dir=/var/a:/a,dir=/b:/data:ro",
			want: ComponentHandler{Name: "h", Ref: "/h.wasm", Mounts: []wrt.Mount{
				{HostPath: "/var/a", GuestPath: "/a"}, {HostPath: "/b", GuestPath: "/data", ReadOnly: true}}}},
		{flag: "h=/h.wasm,http=Inventory.Example:8080;;10.0.0.1,http=b",
			want: ComponentHandler{Name: "h", Ref: "/h.wasm", HTTPHosts: []string{"inventory.example:8080", "10.0.0.1", "b"}}},
		{flag: "h=/h.wasm,http=", want: ComponentHandler{Name: "h", Ref: "/h.wasm"}},
		{flag: "h=/h.wasm,memory=64Mi", want: ComponentHandler{Name: "h", Ref: "/h.wasm", MemoryLimit: 64 << 20}},
		{flag: "h=/h.wasm,memory=1G", want: ComponentHandler{Name: "h", Ref: "/h.wasm", MemoryLimit: 1e9}},
		{flag: "h=/h.wasm,timeout=2s,watch=1m", want: ComponentHandler{Name: "h", Ref: "/h.wasm", CallLimit: 2 * time.Second, Watch: time.Minute}},
		{flag: "h=r,shared,dir=/a:/a:ro,http=x,memory=64Mi,timeout=1s,watch=500ms",
			want: ComponentHandler{Name: "h", Ref: "r", Shared: true, Mounts: []wrt.Mount{{HostPath: "/a", GuestPath: "/a", ReadOnly: true}},
				HTTPHosts: []string{"x"}, MemoryLimit: 64 << 20, CallLimit: time.Second, Watch: 500 * time.Millisecond}},

		{flag: "", wantErr: `component handler "": want NAME=REF[,option…]`},
		{flag: "debugEcho", wantErr: `component handler "debugEcho": want NAME=REF[,option…]`},
		{flag: "=ref", wantErr: `component handler "=ref": want NAME=REF[,option…]`},
		{flag: "h=", wantErr: `component handler "h=": want NAME=REF[,option…]`},
		{flag: "h=r,shared=yes", wantErr: `component handler h: "shared=yes": want shared, shared=true or shared=false`},
		{flag: "h=r,dir=/a", wantErr: `component handler h: dir="/a": want HOST:GUEST[:ro]`},
		{flag: "h=r,dir=:/a", wantErr: `component handler h: dir=":/a": want HOST:GUEST[:ro]`},
		{flag: "h=r,dir=/a:", wantErr: `component handler h: dir="/a:": want HOST:GUEST[:ro]`},
		{flag: "h=r,dir=/a:/a:rw", wantErr: `component handler h: dir="/a:/a:rw": want HOST:GUEST[:ro]`},
		{flag: "h=r,dir=/a:/a:ro:x", wantErr: `component handler h: dir="/a:/a:ro:x": want HOST:GUEST[:ro]`},
		{flag: "h=r,memory=lots", wantErr: `component handler h: memory="lots": not a size`},
		{flag: "h=r,memory=0", wantErr: `component handler h: memory="0": not a size`},
		{flag: "h=r,memory=-1Mi", wantErr: `component handler h: memory="-1Mi": not a size`},
		{flag: "h=r,timeout=5", wantErr: `component handler h: timeout="5": not a positive duration`},
		{flag: "h=r,timeout=0s", wantErr: `component handler h: timeout="0s": not a positive duration`},
		{flag: "h=r,watch=-1s", wantErr: `component handler h: watch="-1s": not a positive duration`},
		{flag: "h=r,watch", wantErr: `component handler h: watch="": not a positive duration`},
		{flag: "h=r,sockets", wantErr: `component handler h: unknown option "sockets"`},
		{flag: "h=r,mem=1Mi", wantErr: `component handler h: unknown option "mem=1Mi"`},
		{flag: "h=r,", wantErr: `component handler h: unknown option ""`},
	}
	for _, tc := range tests {
		t.Run(tc.flag, func(t *testing.T) {
			got, err := ParseComponentHandler(tc.flag)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %+v, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
