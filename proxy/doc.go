// Package proxy owns the bridge that lets a discovery handler written as a
// Wasm module take part in Akri's gRPC protocol (the akri-on-krustlet
// design): the proxy registers with the agent under the handler's name
// (proto/discoveryhandler) and, for each distinct Discover request, writes the
// request's discoveryDetails as JSON to in.in in an exchange directory shared
// with the Wasm handler's pod, then streams every new valid out.out the
// handler writes back. The file format is proxy/exchange's.
//
// What it keeps from the original and what it fixes:
//   - The files and their JSON are the original's, so the original handler
//     still works for a single request.
//   - Writes are atomic both ways (temp file + rename); the proxy watches the
//     directory with fsnotify (Options.Poll reads it on a timer instead).
//   - Ids and property values pass through exactly (the original kept JSON
//     quotes, turning foo0 into "foo0" and Instance ...-8120fe into ...-aae70c).
//   - The first request uses the top-level in.in/out.out; every further
//     distinct request gets a sub-directory <dir>/req-<hash>/, so two
//     Configurations using the same handler do not overwrite each other.
//   - out.out is never deleted after reading; the last good list is sent at
//     once to every new Discover stream (an agent restart, a reconnect).
//   - Malformed or half-written output is logged with the reason and the
//     last good list is kept; a handler silent past SilenceTimeout is
//     reported.
package proxy
