// Package proto holds the Akri discovery protocol: its definition and
// generated Go code (proto/v0, package v0 on the wire) and the Go helper for
// writing a discovery handler (proto/discoveryhandler). It is a leaf: nothing
// under it imports another wasilet package, so agents, proxies and handlers
// can all share it. Regenerate the code with `just generate`.
package proto
