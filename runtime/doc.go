// Package runtime owns WebAssembly execution: the one shared wasmtime engine of
// a process, compiling WASI p1 core modules and WASI p2 components (and caching
// their compiled artifacts on disk and in memory), and running them with argv,
// environment, preopened directories, standard streams, memory limits and
// epoch-based cancellation. It knows nothing of Kubernetes.
package runtime
