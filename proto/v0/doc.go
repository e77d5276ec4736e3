// Package v0 is the Go code generated from discovery.proto, Akri's discovery
// protocol v0: the Registration service the agent serves for discovery
// handlers, and the DiscoveryHandler service each handler serves. Wire- and
// name-compatible with project-akri/akri 0.13. Edit discovery.proto and run
// `just generate` (hack/generate.sh, pinned generators in tools/protogen);
// TestGeneratedCodeIsCurrent fails when the checked-in code is stale.
package v0
