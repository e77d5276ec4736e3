// Package startgc keeps the garbage collector off while the packages of the
// wasilet binary initialize, and turns it back on when main starts.
//
// The binary links Kubernetes' client libraries, virtual-kubelet, gRPC and
// protobuf registries; their package initializers allocate about 8 MB of
// mostly long-lived data (schemes, registries, metric descriptors). With the
// default GOGC the heap's 4 MB floor makes the collector run several times
// during that, marking data that is all still live: a third or more of the
// CPU time of a short command such as `wasilet version` or `wasilet run`.
//
// The package imports nothing but runtime/debug, so it initializes as soon
// as runtime/debug has. Go initializes ready packages in import-path order,
// and runtime/debug, sorting after k8s.io/..., waits for the Kubernetes
// packages that are ready before it (about a fifth of the work); the
// collector is off for the rest. The wasilet command calls Done first thing
// in main, which restores the collector's setting (GOGC from the
// environment, or its default). For `wasilet run` the collector is left on:
// package early may run the guest from its init function, after this
// package's init and before main.
package startgc
