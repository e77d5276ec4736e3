// Package agent owns the Akri agent (wire- and API-compatible with Akri 0.13):
// the discovery-handler registry (gRPC v0 on agent-registration.sock), one
// Discover stream per (Configuration, handler endpoint), the Instances this
// node is in (server-side apply, field manager = node name), and a device
// plugin (deviceplugin v1beta1) per Instance and per Configuration registered
// at the kubelet's socket — any kubelet's, or the wasilet node's own.
//
// One pipeline: every source of devices reports the full list of its
// (Configuration, endpoint); the Configuration reconciler merges the lists
// into the Instances this node should be in and applies them; the Instance
// reconciler follows the Instances with plugin servers and owns this node's
// slot claims in deviceUsage (field manager dp-<node>; a conflict means the
// slot is taken).
//
// Behaviour kept from upstream: Instance names <configuration>-<hash> (BLAKE2b,
// 3 bytes, over the id, plus the node name for unshared devices); ownerRef to
// the Configuration; finalizer <node> on Configurations and Instances, as
// manager <node>-fin; brokerProperties = device properties overlaid by the
// Configuration's; Allocate envs K and K_<HASH>; the slot reclaimer (PodResources
// List every 10 s, free after 20 s unused).
//
// Upstream defects fixed: instance-level slots are reclaimed too; plugins
// serve again and re-register when kubelet.sock is created again; a broken
// Discover stream is reopened with capped back-off (its devices kept for
// LostGrace meanwhile); a handler registering after its Configuration starts
// discovery at once; changed discoveryDetails or property values restart
// discovery; capacity and brokerProperties changes reach Instances (forced
// apply, so co-owning nodes do not conflict forever) and plugins; nothing is
// pruned until every stream has reported once (an agent restart keeps its
// Instances and claims); two devices whose names collide are reported.
// Optional OfflineGrace keeps a vanished shared device for a while.
//
// Component handlers (component.go): a Wasm component of the
// akri:discovery@0.1.0 world (proto/wit) registered by Options
// .ComponentHandlers is a registry entry like a gRPC endpoint; its stream is
// a loop of watch calls on an instance per Configuration (runtime.Instance,
// memory and per-call time limits), so its lists reach the same merge,
// Instances and plugins. Its failures are Events and restarts with the
// streams' back-off. It is refused, before it runs, if it is built for
// another WIT version or imports anything beyond WASI 0.2 io, clocks,
// random, filesystem and cli stdio and akri:discovery types and http
// (checkImports: the runtime's WASI linker would also satisfy wasi:sockets).
// Its http import reaches granted hosts only, each request bounded by the
// watch call that made it.
package agent
