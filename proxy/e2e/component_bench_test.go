package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasilet/wasilet/agent"
	akri "github.com/wasilet/wasilet/agent/apis/akri/v0"
	"github.com/wasilet/wasilet/handlers/debugecho"
	"github.com/wasilet/wasilet/internal/akritest"
	"github.com/wasilet/wasilet/internal/benchreport"
	"github.com/wasilet/wasilet/internal/clustertest"
	"github.com/wasilet/wasilet/internal/nodetest"
	wrt "github.com/wasilet/wasilet/runtime"
)

// The three ways of serving debugEcho that BenchmarkComponentHandler
// compares, by the handler name their Configurations give.
const (
	componentHandler = "debugEchoComponent" // the component, hosted by the node's agent
	proxyHandler     = "debugEcho"          // `wasilet proxy` + the Wasm handler pod
	nativeHandler    = "debugEchoNative"    // `wasilet debug-echo`, gRPC
)

// discoverCalls is how many discover calls the in-process measurement
// times.
func discoverCalls() int { return benchreport.Size("WASILET_BENCH_DISCOVER_CALLS", 1000, 10) }

// BenchmarkComponentHandler times the reference scenario's device path
// (Configuration applied with kubectl apply → the broker's line in kubectl
// logs, polled every 10 ms) with debugEcho served three ways on the same
// node in the same run, runs interleaved (component, proxy, native, …) so
// that they share the machine's noise: the debugEcho component hosted by the
// agent, the proxy + Wasm handler pod, and the native gRPC handler. Then, in
// process, the cost of one discover call on a cached component instance
// against the same discovery in native Go.
func BenchmarkComponentHandler(b *testing.B) {
	var comp, prox, native []time.Duration
	b.Run("device-path", func(b *testing.B) {
		for b.Loop() {
			comp, prox, native = componentDevicePath(b, devicePathRuns())
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(benchreport.Ms(akritest.Percentile(comp, 50)), "component-p50-ms")
		b.ReportMetric(benchreport.Ms(akritest.Percentile(prox, 50)), "proxy-p50-ms")
		b.ReportMetric(benchreport.Ms(akritest.Percentile(native, 50)), "native-p50-ms")
	})
	var call, goCall []float64
	b.Run("discover-call", func(b *testing.B) {
		for b.Loop() {
			call, goCall = discoverCost(b, discoverCalls())
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(benchreport.Percentile(call, 50), "component-p50-µs")
		b.ReportMetric(benchreport.Percentile(goCall, 50), "go-p50-µs")
	})

	const method = "Real control plane, registry, one `wasilet node` and `wasilet controller`, the Wasm broker; on that node debugEcho is served three ways at once: " +
		"the debugEcho component (handlers/debug-echo-component, pulled from the registry) hosted by the node's agent (--component-handler), " +
		"`wasilet proxy` with the Wasm debugEcho handler pod (100 ms checks), and the native `wasilet debug-echo` over gRPC (100 ms checks). " +
		"Each run applies a Configuration for a device not seen before, reads the broker pod's log through the API (the request `kubectl logs` makes) every 10 ms for the broker's line, then deletes it; " +
		"runs are interleaved between the three, after one untimed run of each and the broker image run once on the node (no pull or compile is measured)."
	benchreport.Record(b, benchreport.Result{
		Group: "Device path", Metric: "Configuration applied → broker log line: component handler vs proxy + Wasm pod", Unit: "ms",
		Wasilet: benchreport.MsOf(comp), Baseline: benchreport.MsOf(prox), BaselineName: "`wasilet proxy` + the Wasm debugEcho handler pod",
		Target: benchreport.Target{MinRatio: 1, Text: "ahead of the proxy + Wasm pod"},
		Method: method,
	})
	benchreport.Record(b, benchreport.Result{
		Group: "Device path", Metric: "Configuration applied → broker log line: component handler vs native gRPC handler", Unit: "ms",
		Wasilet: benchreport.MsOf(comp), Baseline: benchreport.MsOf(native), BaselineName: "native `wasilet debug-echo` (gRPC)",
		Method: method,
	})
	benchreport.Record(b, benchreport.Result{
		Group: "Device path", Metric: "discover call on a cached component instance (debugEcho, one device)", Unit: "µs",
		Wasilet: call, Baseline: goCall, BaselineName: "the same discovery in native Go (handlers/debugecho: ParseDetails, Available, Devices)",
		Method: "In process: the debugEcho component loaded and instantiated once with the agent's imports, its availability directory preopened as /tmp; " +
			"`discover(details, [])` called repeatedly through the runtime's typed calls (arguments lowered, the device list lifted), each call timed; " +
			"the native handler's discovery is the same three functions called directly. Both read the availability file on every call.",
	})
}

// componentDevicePath runs the three handlers' device paths runs times
// each, interleaved.
func componentDevicePath(b *testing.B, runs int) (comp, prox, native []time.Duration) {
	env := clustertest.Require(b)
	ref := nodetest.PushWasm(b, env, nodetest.WasmFile(b, "debug-echo-component.component.wasm"), "debug-echo-component:bench")
	avail := b.TempDir()
	s := setupWith(b, setupOptions{nodeArgs: []string{"--component-handler", componentHandler + "=" + ref + ",shared,dir=" + avail + ":/tmp:ro"}})
	s.handlerPod(b)
	akritest.StartDebugEcho(b, s.dir, nativeHandler, true)
	akritest.Warm(b, s.c, s.node.Name, s.ns, s.broker)

	handlers := []string{componentHandler, proxyHandler, nativeHandler}
	got := map[string][]time.Duration{}
	for i := -1; i < runs; i++ { // run -1: untimed warm-up of each handler
		for _, h := range handlers {
			d := s.handlerRun(b, h, fmt.Sprintf("%s-%d", strings.ToLower(h), i+1))
			if i >= 0 {
				got[h] = append(got[h], d)
			}
		}
	}
	b.Logf("applied → log line: component %v; proxy + Wasm pod %v; native %v", got[componentHandler], got[proxyHandler], got[nativeHandler])
	return got[componentHandler], got[proxyHandler], got[nativeHandler]
}

// handlerRun applies a Configuration named like its device for handler,
// waits for the broker's line, deletes it, and returns how long the line
// took.
func (s *scenario) handlerRun(b *testing.B, handler, device string) time.Duration {
	b.Helper()
	ctx := context.Background()
	name := device
	line := fmt.Sprintf("Pod is running and using debugEcho device named: %q", device)
	pod := s.node.Name + "-" + akri.InstanceName(name, device, true, "") + "-pod"
	text := strings.Replace(s.configurationText(b, name, device), "    name: debugEcho\n", "    name: "+handler+"\n", 1)
	took := s.applyUntilLine(b, text, pod, line)
	if out, err := s.env.Kubectl(ctx, "delete", "-n", s.ns, "akric", name, "--wait=true"); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	s.waitGone(b, pod)
	return took
}

// discoverCost times calls discover calls on one instance of the debugEcho
// component, and as many runs of the same discovery in native Go, in µs.
func discoverCost(b *testing.B, calls int) (component, native []float64) {
	e, err := wrt.NewEngine(wrt.Options{CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	p, err := e.LoadFile(ctx, nodetest.WasmFile(b, "debug-echo-component.component.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	noHTTP := func(context.Context, any, []wrt.Value) ([]wrt.Value, error) {
		return []wrt.Value{wrt.Err(wrt.String("not granted"))}, nil
	}
	l, err := e.NewLinker([]wrt.Import{
		{Interface: agent.WITPackage + "/types@" + agent.WITVersion},
		{Interface: agent.WITPackage + "/http@" + agent.WITVersion, Func: "get", Fn: noHTTP},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	avail := b.TempDir()
	if err := os.WriteFile(filepath.Join(avail, "debug-echo-availability.txt"), []byte("ONLINE\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	inst, err := p.Instantiate(wrt.InstanceSpec{Linker: l, Mounts: []wrt.Mount{{HostPath: avail, GuestPath: "/tmp", ReadOnly: true}}, MemoryLimit: 128 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Close()
	instantiate := time.Since(t0)
	const details = "descriptions:\n- foo0\n"
	args := []wrt.Value{wrt.String(details), wrt.List()}
	iface := agent.WITPackage + "/handler@" + agent.WITVersion
	call := func() error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		res, err := inst.Call(cctx, iface, "discover", args, 1)
		if err != nil {
			return err
		}
		v, _ := res[0].Payload()
		if !res[0].Ok || len(v.Elems) != 1 {
			return fmt.Errorf("discover returned %+v", res[0])
		}
		return nil
	}
	availFile := filepath.Join(avail, "debug-echo-availability.txt")
	goCall := func() error {
		d, err := debugecho.ParseDetails(details)
		if err != nil {
			return err
		}
		if devs := debugecho.Devices(d.Descriptions, debugecho.Available(availFile)); len(devs) != 1 {
			return errors.New("no device")
		}
		return nil
	}
	// Warm both up (the guest's first call initialises its runtime).
	t0 = time.Now()
	if err := call(); err != nil {
		b.Fatal(err)
	}
	b.Logf("instantiate (compiled component cached): %v; first discover call: %v", instantiate.Round(time.Microsecond), time.Since(t0).Round(time.Microsecond))
	for range 10 {
		if err := errors.Join(call(), goCall()); err != nil {
			b.Fatal(err)
		}
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	for range calls {
		t := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		component = append(component, us(time.Since(t)))
		t = time.Now()
		if err := goCall(); err != nil {
			b.Fatal(err)
		}
		native = append(native, us(time.Since(t)))
	}
	b.Logf("discover: component p50 %.1f µs / p99 %.1f µs; native Go p50 %.1f µs / p99 %.1f µs (n=%d)",
		benchreport.Percentile(component, 50), benchreport.Percentile(component, 99),
		benchreport.Percentile(native, 50), benchreport.Percentile(native, 99), calls)
	return component, native
}
