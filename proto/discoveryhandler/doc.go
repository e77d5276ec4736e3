// Package discoveryhandler runs an Akri discovery handler (DH) written in Go,
// as Akri's discovery-utils crate does for Rust handlers: it serves the
// DiscoveryHandler gRPC service of [v0] and keeps the DH registered with the
// Akri agent of its node.
//
// A DH implements [Discoverer] and calls [Run]:
//
//	opts := discoveryhandler.OptionsFromEnv() // DISCOVERY_HANDLERS_DIRECTORY, POD_IP
//	opts.Name, opts.Shared = "debugEcho", false
//	err := discoveryhandler.Run(ctx, opts, discoveryhandler.DiscovererFunc(
//		func(ctx context.Context, req *v0.DiscoverRequest, send func([]*v0.Device) error) error {
//			// parse req.DiscoveryDetails; send the full device list now and on
//			// every change, until ctx ends
//		}))
//
// Run serves on the unix socket <dir>/<name>.sock (replacing a stale one), or
// on <PodIP>:10000 when a pod IP is given; then it registers with the agent on
// <dir>/agent-registration.sock, retrying every 10 s until the agent answers.
// It registers again when the agent may have forgotten the DH: when the agent
// drops a Discover stream (as upstream does), and when the registration socket
// is replaced, which is what an agent restart does (upstream does not watch
// for that; a DH with no open stream would stay unknown to the new agent).
//
// Errors a Discoverer returns reach the agent as gRPC statuses ([ToGRPC]): the
// agent treats InvalidArgument as bad discovery details and anything else as
// an unavailable DH.
//
// The package is part of proto/, a leaf: it imports only [v0], gRPC and the
// standard library. It owns the DH side of the protocol only; the agent's
// registration server lives in the agent.
package discoveryhandler
