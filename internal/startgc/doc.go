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
// The package imports nothing but runtime/debug, so it is ready to
// initialize as soon as runtime/debug is, and Go initializes ready packages
// in import-path order: it runs before the large dependencies (k8s.io/...,
// sigs.k8s.io/..., google.golang.org/..., go.opencensus.io/...), whose paths
// sort after it. Only the wasilet command imports it, as the first thing it
// does in main it calls Done, which restores the collector's setting (GOGC
// from the environment, or its default).
package startgc
