// Package grpcsock owns the plumbing shared by wasilet's node-local gRPC
// endpoints (the CRI endpoint, the PodResources API and the device-plugin
// registration server): checking that a unix socket path fits the kernel's
// limit, preparing and listening on the socket, serving a grpc.Server on it
// in the background and stopping it again, socket file included (Listen,
// Serve, Server.Stop), and Endpoint, which adds start-once/stop-any-time
// bookkeeping on top. The callers keep their own services and log wording;
// errors returned here name the step that failed and are meant to be wrapped
// with the component's name.
package grpcsock
