// Package exchange is the file protocol between the discovery-handler proxy
// (`wasilet proxy`) and a discovery handler running as a Wasm pod: the shapes
// of the files they trade through a shared directory, how they are written,
// and which directories hold requests. It is the whole contract; the proxy and
// every Wasm handler import it. It uses the standard library only and builds
// for GOOS=wasip1.
//
// It keeps the file format of the akri-on-krustlet demo, so that demo's
// original handler still works for one request.
//
// # The directory
//
// The proxy and the handler share a directory D, a hostPath volume mounted in
// the handler's pod ([DefaultDir], /tmp/wde-dir, by default). D holds:
//
//   - D/in.in ([InFile]), written by the proxy: the request, a JSON object
//     made from the Configuration's discoveryDetails YAML.
//   - D/out.out ([OutFile]), written by the handler: the full device list
//     answering that request (see [Output]). Each new out.out replaces the
//     previous list.
//   - D/debug-echo-availability.txt ([AvailabilityFile]), written by an
//     operator (or a test): while it contains OFFLINE ([Offline]) the debugEcho
//     handler reports no devices. A missing file means online. It lives at the
//     top level only and applies to every request.
//
// For debugEcho's discoveryDetails "descriptions: [foo0]", in.in is
//
//	{"descriptions":["foo0"]}
//
// and out.out is
//
//	{"devices":[{"id":"foo0","properties":{"DEBUG_ECHO_DESCRIPTION":"foo0"},"mounts":[],"device_specs":[]}]}
//
// Items of "mounts" are {"container_path","host_path","read_only"} and items
// of "device_specs" are {"container_path","host_path","permissions"}: the
// fields of Akri's Mount and DeviceSpec messages, in snake case.
//
// # Several requests
//
// The first active request uses D/in.in and D/out.out, so a handler that only
// knows the single-request layout still answers it. Every further distinct
// request gets a sub-directory D/<id>/ with its own in.in and out.out; id is
// [RequestID] of its in.in content ("req-" and 12 hex digits). A handler
// answers every directory [RequestDirs] returns: D and each immediate
// sub-directory that holds an in.in. The proxy removes a sub-directory when
// its request ends; the handler then forgets it.
//
// # Writing
//
// Both sides write every file with [WriteFileAtomic]: a temporary file in the
// same directory (named "."+name+".tmp-*", which readers ignore), then a
// rename over the target, so a reader sees the old content or the new one,
// never half of it. Still, [ParseOutput] rejects truncated or malformed
// output with an error naming the problem, since a handler may write
// non-atomically (the original did).
//
// A proxy that gives a directory a new request removes its out.out before it
// writes the new in.in, so an answer to the previous request is not taken for
// the new one. A handler writes out.out only when its content changes or the
// file is missing, and skips a write when in.in changed while it worked; it
// may still, rarely, write one answer to the previous in.in just after the
// swap, followed at its next poll by the right one. A request in a
// sub-directory never changes (its name is the hash of its content).
//
// # Differences from the original demo
//
// The original proxy kept the JSON quotes of ids and property values ("foo0"
// became "\"foo0\"", whose Instance hash is aae70c instead of 8120fe);
// ParseOutput takes JSON strings as the strings they are. The original wrote
// files in place, deleted out.out after each read, shared one file pair
// between all requests and overwrote the availability file at start; none of
// that is part of this protocol.
//
// Both sides notice a replaced file by its Stamp (modification time, size and
// inode: a rename over a file changes the inode even where timestamps are
// coarse).
package exchange
