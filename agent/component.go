package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	v0 "github.com/wasilet/wasilet/proto/v0"
	wrt "github.com/wasilet/wasilet/runtime"
)

// The WIT package component handlers are built against (proto/wit). The
// agent hosts exactly this version's handler interface and imports.
const (
	WITPackage       = "akri:discovery"
	WITVersion       = "0.1.0"
	witHandler       = WITPackage + "/handler@" + WITVersion
	witTypes         = WITPackage + "/types@" + WITVersion
	witHTTP          = WITPackage + "/http@" + WITVersion
	httpBodyLimit    = 1 << 20
	httpTimeout      = 10 * time.Second
	componentPrefix  = "component:"
	defaultCallLimit = 5 * time.Second
	defaultWatch     = 10 * time.Second
	defaultMemory    = 128 << 20
)

// ComponentHandler is a discovery handler that is a Wasm component of the
// akri:discovery world, hosted in-process: it is registered under Name
// (what Configurations name in discoveryHandler.name) as if it had
// registered over gRPC, and its devices take the same path as a gRPC
// handler's.
type ComponentHandler struct {
	Name string
	// Ref is an OCI reference, or a path to a .wasm file (starting with /
	// or ./).
	Ref    string
	Shared bool
	// Mounts are the only directories the handler can open
	// (HOST:GUEST[:ro]).
	Mounts []wrt.Mount
	// HTTPHosts are the only hosts (host or host:port) its http import may
	// reach.
	HTTPHosts []string
	// MemoryLimit caps its linear memory (default 128 MiB).
	MemoryLimit int64
	// CallLimit bounds each call beyond the watch deadline it is given
	// (default 5 s); Watch is the watch deadline (default 10 s).
	CallLimit, Watch time.Duration
}

// ParseComponentHandler parses the --component-handler flag:
//
//	NAME=REF[,shared][,dir=HOST:GUEST[:ro]]…[,http=HOST[;HOST…]][,memory=64Mi][,timeout=5s][,watch=10s]
func ParseComponentHandler(s string) (ComponentHandler, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" || rest == "" {
		return ComponentHandler{}, fmt.Errorf("component handler %q: want NAME=REF[,option…]", s)
	}
	parts := strings.Split(rest, ",")
	h := ComponentHandler{Name: name, Ref: parts[0]}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "shared":
			switch p {
			case "shared", "shared=true":
				h.Shared = true
			case "shared=false":
				h.Shared = false
			default:
				return h, fmt.Errorf("component handler %s: %q: want shared, shared=true or shared=false", name, p)
			}
		case "dir":
			f := strings.Split(v, ":")
			if len(f) < 2 || len(f) > 3 || f[0] == "" || f[1] == "" || (len(f) == 3 && f[2] != "ro") {
				return h, fmt.Errorf("component handler %s: dir=%q: want HOST:GUEST[:ro]", name, v)
			}
			h.Mounts = append(h.Mounts, wrt.Mount{HostPath: f[0], GuestPath: f[1], ReadOnly: len(f) == 3})
		case "http":
			for _, host := range strings.Split(v, ";") {
				if host != "" {
					h.HTTPHosts = append(h.HTTPHosts, strings.ToLower(host))
				}
			}
		case "memory":
			q, err := resource.ParseQuantity(v)
			if err != nil || q.Value() <= 0 {
				return h, fmt.Errorf("component handler %s: memory=%q: not a size", name, v)
			}
			h.MemoryLimit = q.Value()
		case "timeout", "watch":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return h, fmt.Errorf("component handler %s: %s=%q: not a positive duration", name, k, v)
			}
			if k == "timeout" {
				h.CallLimit = d
			} else {
				h.Watch = d
			}
		default:
			return h, fmt.Errorf("component handler %s: unknown option %q", name, p)
		}
	}
	return h, nil
}

// ComponentHost is what the agent needs to run component handlers: the
// process's runtime engine and a way to fetch a handler's binary (the
// node's or the agent's OCI store).
type ComponentHost struct {
	Engine *wrt.Engine
	// Fetch returns the wasm binary of ref and its digest ("" if unknown).
	Fetch func(ctx context.Context, ref string) (wasm []byte, digest string, err error)
}

// componentSource runs one component handler for every Configuration that
// names it: one instance per Configuration, called through the handler's
// watch export in a loop on the stream's goroutine.
type componentSource struct {
	spec   ComponentHandler
	host   ComponentHost
	linker *wrt.Linker

	mu   sync.Mutex
	prog *wrt.Program
}

func newComponentSource(spec ComponentHandler, host ComponentHost) (*componentSource, error) {
	if spec.MemoryLimit == 0 {
		spec.MemoryLimit = defaultMemory
	}
	if spec.CallLimit == 0 {
		spec.CallLimit = defaultCallLimit
	}
	if spec.Watch == 0 {
		spec.Watch = defaultWatch
	}
	s := &componentSource{spec: spec, host: host}
	l, err := host.Engine.NewLinker([]wrt.Import{
		{Interface: witTypes},
		{Interface: witHTTP, Func: "get", Fn: s.httpGet},
	})
	if err != nil {
		return nil, fmt.Errorf("component handler %s: %w", spec.Name, err)
	}
	s.linker = l
	return s, nil
}

// handler is the registry entry of the source.
func (s *componentSource) handler() Handler {
	return Handler{Name: s.spec.Name, Endpoint: componentPrefix + s.spec.Ref, Shared: s.spec.Shared, source: s}
}

var witNameRE = regexp.MustCompile(`akri:discovery/[a-z-]+@([0-9]+\.[0-9]+\.[0-9]+)`)

// checkWITVersion gives a clear error for a component built against another
// version of the akri:discovery package: its imports and exports name the
// version.
func checkWITVersion(wasm []byte) error {
	found := map[string]bool{}
	for _, m := range witNameRE.FindAllSubmatch(wasm, -1) {
		found[string(m[1])] = true
	}
	if len(found) == 0 {
		return fmt.Errorf("not a discovery handler: the component names no %s interface (this agent hosts %s@%s)", WITPackage, WITPackage, WITVersion)
	}
	var bad []string
	for v := range found {
		if !witCompatible(v) {
			bad = append(bad, WITPackage+"@"+v)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("WIT version mismatch: the component is built for %s, this agent hosts %s@%s", strings.Join(bad, ", "), WITPackage, WITVersion)
	}
	return nil
}

// witCompatible: semver-compatible with WITVersion (0.1.x).
func witCompatible(v string) bool {
	want := strings.Split(WITVersion, ".")
	got := strings.Split(v, ".")
	if len(got) != 3 {
		return false
	}
	if want[0] != "0" {
		return got[0] == want[0]
	}
	return got[0] == "0" && got[1] == want[1]
}

// load fetches and compiles the component once (the runtime caches the
// compiled artifact on disk and in memory).
func (s *componentSource) load(ctx context.Context) (*wrt.Program, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prog != nil {
		return s.prog, nil
	}
	wasm, digest, err := s.host.Fetch(ctx, s.spec.Ref)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", s.spec.Ref, err)
	}
	if k, err := wrt.DetectKind(wasm); err != nil || k != wrt.KindComponent {
		return nil, fmt.Errorf("%s is not a component (a discovery handler must be a component of %s@%s)", s.spec.Ref, WITPackage, WITVersion)
	}
	if err := checkWITVersion(wasm); err != nil {
		return nil, err
	}
	p, err := s.host.Engine.Load(ctx, wasm, digest)
	if err != nil {
		return nil, err
	}
	imports, err := p.Imports()
	if err != nil {
		return nil, err
	}
	if err := checkImports(imports); err != nil {
		return nil, err
	}
	s.prog = p
	return p, nil
}

// wasiGranted are the WASI 0.2 interfaces a component handler may import,
// by package (every interface) or package/interface. The linker defines all
// of WASI 0.2 (wasmtime's C API offers no way to leave an interface out),
// so what is not granted here must be refused before instantiating:
// wasi:sockets, above all, and wasi:http. Instances get no network and no
// stdin; stdout and stderr are discarded.
var wasiGranted = map[string]bool{
	"wasi:io": true, "wasi:clocks": true, "wasi:random": true, "wasi:filesystem": true,
	"wasi:cli/environment": true, "wasi:cli/exit": true,
	"wasi:cli/stdin": true, "wasi:cli/stdout": true, "wasi:cli/stderr": true,
	"wasi:cli/terminal-input": true, "wasi:cli/terminal-output": true,
	"wasi:cli/terminal-stdin": true, "wasi:cli/terminal-stdout": true, "wasi:cli/terminal-stderr": true,
}

// checkImports refuses a component that imports anything beyond WASI 0.2
// (wasiGranted) and the akri:discovery types and http interfaces (http is
// limited to the hosts granted to the handler), naming what it refuses.
func checkImports(imports []string) error {
	var bad []string
	for _, name := range imports {
		if !importGranted(name) {
			bad = append(bad, name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	what := "import"
	if len(bad) > 1 {
		what = "imports"
	}
	return fmt.Errorf("%s %s not granted: a discovery handler may import only WASI 0.2 io, clocks, random, filesystem (its preopens), cli (environment, exit, stdio, terminal) and %s types and http",
		what, strings.Join(bad, ", "), WITPackage)
}

func importGranted(name string) bool {
	iface, version, ok := strings.Cut(name, "@")
	if !ok {
		return false
	}
	pkg, _, ok := strings.Cut(iface, "/")
	if !ok {
		return false
	}
	switch pkg {
	case "wasi:io", "wasi:clocks", "wasi:random", "wasi:filesystem", "wasi:cli":
		return (wasiGranted[pkg] || wasiGranted[iface]) && strings.HasPrefix(version, "0.2.")
	case WITPackage:
		return (iface == WITPackage+"/types" || iface == WITPackage+"/http") && witCompatible(version)
	}
	return false
}

// sourceError is a failure of a component handler worth an Event: its own
// err result, a trap, a time limit, a refused instantiation, bad output.
type sourceError struct{ msg string }

func (e *sourceError) Error() string { return e.msg }

// discover runs discovery for one Configuration until ctx ends or the
// handler fails: instantiate, then watch in a loop, sending every list.
func (s *componentSource) discover(ctx context.Context, req *v0.DiscoverRequest, send func([]*v0.Device)) error {
	prog, err := s.load(ctx)
	if err != nil {
		return &sourceError{fmt.Sprintf("component handler %s: %v", s.spec.Name, err)}
	}
	inst, err := prog.Instantiate(wrt.InstanceSpec{
		Linker: s.linker, Mounts: s.spec.Mounts, MemoryLimit: s.spec.MemoryLimit, Data: s,
	})
	if err != nil {
		return &sourceError{fmt.Sprintf("component handler %s: %v", s.spec.Name, err)}
	}
	defer inst.Close()
	args := []wrt.Value{wrt.String(req.GetDiscoveryDetails()), properties(req.GetDiscoveryProperties()), wrt.U32(uint32(s.spec.Watch / time.Millisecond))}
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, s.spec.Watch+s.spec.CallLimit)
		res, err := inst.Call(cctx, witHandler, "watch", args, 1)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return &sourceError{fmt.Sprintf("component handler %s: %v", s.spec.Name, err)}
		}
		devs, err := devicesFrom(res[0])
		if err != nil {
			return &sourceError{fmt.Sprintf("component handler %s: %v", s.spec.Name, err)}
		}
		send(devs)
	}
	return ctx.Err()
}

// properties turns discovery properties into list<tuple<string,
// option<list<u8>>>>, by name.
func properties(m map[string]*v0.ByteData) wrt.Value {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]wrt.Value, len(names))
	for i, k := range names {
		v := wrt.None()
		if m[k] != nil && m[k].Vec != nil {
			v = wrt.Some(wrt.Bytes(m[k].Vec))
		}
		out[i] = wrt.Tuple(wrt.String(k), v)
	}
	return wrt.List(out...)
}

// devicesFrom reads result<list<device>, string>, checking its shape: a
// handler's bad output is an error, never a panic.
func devicesFrom(v wrt.Value) ([]*v0.Device, error) {
	if v.Kind != wrt.KindResult {
		return nil, fmt.Errorf("watch returned a %s, not a result", v.Kind)
	}
	p, _ := v.Payload()
	if !v.Ok {
		if p.Kind != wrt.KindString {
			return nil, errors.New("watch failed without a message")
		}
		return nil, fmt.Errorf("discovery failed: %s", p.Str)
	}
	if p.Kind != wrt.KindList {
		return nil, fmt.Errorf("watch returned a %s, not a list of devices", p.Kind)
	}
	out := make([]*v0.Device, 0, len(p.Elems))
	seen := make(map[string]bool, len(p.Elems))
	for i, d := range p.Elems {
		dev, err := deviceFrom(d)
		if err != nil {
			return nil, fmt.Errorf("device %d: %w", i, err)
		}
		if seen[dev.Id] {
			return nil, fmt.Errorf("device id %q reported twice", dev.Id)
		}
		seen[dev.Id] = true
		out = append(out, dev)
	}
	return out, nil
}

func str(v wrt.Value, ok bool) (string, error) {
	if !ok || v.Kind != wrt.KindString {
		return "", errors.New("not a string")
	}
	return v.Str, nil
}

func deviceFrom(d wrt.Value) (*v0.Device, error) {
	id, err := str(d.Field("id"))
	if err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	if id == "" {
		return nil, errors.New("empty id")
	}
	dev := &v0.Device{Id: id, Properties: map[string]string{}}
	props, ok := d.Field("properties")
	if !ok || props.Kind != wrt.KindList {
		return nil, errors.New("properties: not a list")
	}
	for _, kv := range props.Elems {
		if kv.Kind != wrt.KindTuple || len(kv.Elems) != 2 || kv.Elems[0].Kind != wrt.KindString || kv.Elems[1].Kind != wrt.KindString {
			return nil, errors.New("properties: not a list of string pairs")
		}
		if _, dup := dev.Properties[kv.Elems[0].Str]; dup {
			return nil, fmt.Errorf("property %q given twice", kv.Elems[0].Str)
		}
		dev.Properties[kv.Elems[0].Str] = kv.Elems[1].Str
	}
	if mounts, ok := d.Field("mounts"); ok && mounts.Kind == wrt.KindList {
		for _, m := range mounts.Elems {
			cp, err1 := str(m.Field("container-path"))
			hp, err2 := str(m.Field("host-path"))
			ro, _ := m.Field("read-only")
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("mount: %w", err)
			}
			dev.Mounts = append(dev.Mounts, &v0.Mount{ContainerPath: cp, HostPath: hp, ReadOnly: ro.Bool})
		}
	} else {
		return nil, errors.New("mounts: not a list")
	}
	if specs, ok := d.Field("device-specs"); ok && specs.Kind == wrt.KindList {
		for _, sp := range specs.Elems {
			cp, err1 := str(sp.Field("container-path"))
			hp, err2 := str(sp.Field("host-path"))
			perm, err3 := str(sp.Field("permissions"))
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, fmt.Errorf("device-spec: %w", err)
			}
			dev.DeviceSpecs = append(dev.DeviceSpecs, &v0.DeviceSpec{ContainerPath: cp, HostPath: hp, Permissions: perm})
		}
	} else {
		return nil, errors.New("device-specs: not a list")
	}
	return dev, nil
}

// httpGet serves the akri:discovery/http import: GET to a granted host only.
// ctx is the calling discover/watch call's (the runtime passes it): the
// request ends with that call's time limit or the stream, at the latest
// after httpTimeout, so that no request outlives the call that made it (the
// guest cannot be stopped while the host call runs).
func (s *componentSource) httpGet(ctx context.Context, _ any, args []wrt.Value) ([]wrt.Value, error) {
	fail := func(format string, a ...any) ([]wrt.Value, error) {
		return []wrt.Value{wrt.Err(wrt.String(fmt.Sprintf(format, a...)))}, nil
	}
	if len(args) != 1 || args[0].Kind != wrt.KindString {
		return nil, errors.New("http.get: bad arguments")
	}
	u, err := url.Parse(args[0].Str)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail("refused: %q is not an http(s) URL", args[0].Str)
	}
	if !s.granted(u) {
		return fail("refused: host %s is not granted to discovery handler %s", u.Host, s.spec.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail("%v", err)
	}
	client := &http.Client{CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if !s.granted(r.URL) {
			return fmt.Errorf("redirect to %s refused: host not granted", r.URL.Host)
		}
		return nil
	}}
	resp, err := client.Do(req)
	if err != nil {
		return fail("%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, httpBodyLimit+1))
	if err != nil {
		return fail("read body: %v", err)
	}
	if len(body) > httpBodyLimit {
		return fail("body larger than %d bytes", httpBodyLimit)
	}
	var headers []wrt.Value
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range resp.Header {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range resp.Header[k] {
			headers = append(headers, wrt.Tuple(wrt.String(strings.ToLower(k)), wrt.String(v)))
		}
	}
	return []wrt.Value{wrt.OK(wrt.Record([]string{"status", "headers", "body"},
		wrt.U16(uint16(resp.StatusCode)), wrt.List(headers...), wrt.Bytes(body)))}, nil
}

func (s *componentSource) granted(u *url.URL) bool {
	host := strings.ToLower(u.Host)
	name := strings.ToLower(u.Hostname())
	for _, g := range s.spec.HTTPHosts {
		if g == host || (g == name && !strings.Contains(g, ":")) {
			return true
		}
	}
	return false
}
