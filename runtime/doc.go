// Package runtime owns WebAssembly execution: the one shared wasmtime engine of
// a process, compiling WASI p1 core modules and WASI p2 components (and caching
// their compiled artifacts on disk and in memory), and running them with argv,
// environment, preopened directories, standard streams, memory limits and
// epoch-based cancellation. It knows nothing of Kubernetes, OCI or the node.
//
// Usage:
//
//	e, err := runtime.NewEngine(runtime.Options{CacheDir: "/var/lib/wasilet/cache"})
//	...
//	defer e.Close()
//	prog, err := e.Load(ctx, wasm, "sha256:…") // module or component, detected
//	res, err := prog.Run(ctx, runtime.Spec{
//		Name:        "app",                       // argv[0]
//		Args:        []string{"--port", "80"},
//		Env:         []string{"K=V"},
//		Mounts:      []runtime.Mount{{HostPath: dir, GuestPath: "/data"}},
//		Stdout:      stdout, Stderr: stderr,
//		MemoryLimit: 64 << 20,
//		Timeout:     time.Minute,
//	})
//	// err: the host could not run it. res: how the guest ended
//	// (ExitCode, Reason Completed/Error/OOMKilled/Killed, Message).
//
// One Engine serves every run of a process: Load and Run are safe for
// concurrent use, and concurrent loads of one binary compile it once.
// Cancelling Run's context (or Spec.Timeout) stops the guest at once, whether
// it is computing (the stop advances the engine's epoch, so the guest's next
// epoch check sees it) or sleeping. An engine with Options.Uninterruptible
// compiles no epoch checks (a little quicker to compile and run) and cannot
// stop a running guest: for a process that ends itself on a signal.
//
// With Options.Tiered a core module that no cache has is first compiled
// quickly (slower code) and then fully by a low-priority background thread,
// whose artifact and program serve later loads (tiered.go).
//
// A Spec.Usage lets the caller watch a running guest's resource use from
// another goroutine (Usage.Sample): the CPU time of the guest's thread and,
// for core modules, the size of its linear memory.
//
// Plugins: Program.Instantiate makes a long-lived component Instance (a
// store of its own, memory limit, only the granted preopens and env, host
// imports from a Linker) whose exports are called with typed Values by
// Instance.Call under a per-call deadline; a trap or deadline kills the
// instance, never the process. The agent hosts component discovery
// handlers this way.
//
// What this package does not own: pulling images (package oci), turning pods
// into Specs and logs (the node), and the C component bindings
// (runtime/internal/wasmtimec, used through the same Program type).
package runtime
