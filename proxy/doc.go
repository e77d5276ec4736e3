// Package proxy owns the bridge that lets a discovery handler written as a Wasm
// module speak Akri's gRPC protocol: it registers with the agent under the
// handler's name and exchanges discovery requests and device lists with the
// Wasm pod through files in a shared directory. Built after the node.
package proxy
