// Package nodebench holds the end-to-end benchmarks of `wasilet node` that
// `just bench` runs: real node processes (internal/nodetest) against the
// real control plane, scheduler and registry of internal/clustertest,
// running the test program handlers/testprog as a core module and as a
// WASI p2 component. The package has no API; everything is in its test
// files. Figures are reported (b.ReportMetric and b.Logf), never asserted:
// a benchmark fails only when pods do not run at all.
//
// # BenchmarkPodStart and BenchmarkDensity (in `just bench`)
//
// The comparison benchmarks: each measures wasilet and the container
// baseline (internal/containerdtest: containerd + runc driven through the
// CRI as the kubelet calls it) in the same run and records both through
// internal/benchreport. BenchmarkPodStart: bound → Running on a watch for
// $WASILET_BENCH_PODS pods (default 100) with a cached module one at a time
// and as a burst, and for $WASILET_BENCH_COLD_PODS (default 20) pods whose
// module no cache has seen (testprog with a unique custom section, so a new
// digest: pull + compile). BenchmarkDensity: $WASILET_BENCH_DENSITY_PODS
// (default 1,000) sleeping pods created at once on one node with its pods
// capacity raised: time until all run, the curves of pods Running over time
// and node RSS over pods, RSS and OS threads per pod, and the node's CPU
// over 30 s while they sleep ($WASILET_BENCH_HOLD keeps them a while longer
// for a profiler). With $WASILET_BENCH_SMOKE=1 every size is tiny.
//
// The benchmarks below report wasilet's own figures only (go test -bench).
//
// # BenchmarkScheduledToRunning/{module,component}/{serial,burst}
//
// One node; testprog pushed once to the cluster registry; one pod run to
// completion first so that the image is pulled and the compiled cache warm.
// Then N pods (default 100) running `testprog sleep 1h` are created and placed
// by the real kube-scheduler (each pod selects the node by hostname and
// tolerates its taints):
//
//   - serial (run first, on a quiet node): one pod at a time, each created
//     once the previous one runs, which measures the latency of a single pod
//     on a node that fills up; it stops early, reporting the pods measured
//     so far, once it has run for 3 minutes (a slow node must not make
//     `just bench` time out);
//   - burst: all N pods are created at once (16 concurrent creators), which
//     measures the node under a scheduling burst.
//
// One watch on the namespace records, with local receive times, when each
// pod is first seen bound (spec.nodeName set) and first seen Running with a
// running container. The apiserver's own timestamps (PodScheduled
// lastTransitionTime, startedAt) have one-second precision, too coarse for
// this, and both events go through the same watch, so their delivery delay
// cancels out. Scheduled → Running is the node's share: informer delivery,
// pod sync, volume setup, image check, instantiation from the compiled cache,
// and the status patch.
//
// One b.Loop iteration is one batch of N pods; ns/op is the batch's wall time
// (creation to the last pod Running, cleanup excluded); B/op and allocs/op
// (-benchmem) are the benchmark client's own allocations, not the node's. With `-count 1` and
// the default -benchtime the batch runs once. Reported metrics, over every
// pod of every iteration: p50-ms, p99-ms and max-ms of Scheduled → Running
// (nearest-rank percentiles: p99 of 100 pods is the second slowest) and
// pods/s (N / batch time). The log adds Created → Scheduled (the
// scheduler's share) and Created → Running.
//
// # BenchmarkRSSPerPod/{module,component}
//
// A fresh node per kind, warmed like above. The node process's memory
// (/proc/<pid>/status) is read with no pod running, then again once N
// `testprog sleep 1h` pods run; each reading is the smallest VmRSS sampled
// every 250 ms over 10 s (the sample least inflated by uncollected garbage).
// Reported: rss-KB/pod = (VmRSS_N − VmRSS_0)/N, and rss0-MB and rssN-MB;
// the log splits the per-pod figure into RssAnon (Go heap, wasmtime stores
// and instances), RssShmem (linear memories, which wasmtime maps from memfd
// images) and RssFile. The Go heap's garbage and wasmtime's lazily committed
// linear memory make the figure depend on GC timing and on how much each
// guest touched, which is why both kinds run the same program. The timer
// runs through the settle times, so the default -benchtime gives one
// iteration (a second one would start from a heap that has held N pods);
// ns/op is hidden (reported as 0).
//
// # Knobs
//
// WASILET_BENCH_PODS overrides N (e.g. 10 for a quick look). Under
// `go test -short` the benchmarks skip; without -bench only a fast unit test
// of the statistics runs. The machine's load average is logged at the start
// and end of every benchmark: the figures are only comparable at similar
// load, and `just bench` runs other packages' benchmarks in parallel.
package nodebench
