// Package debugecho is the logic of Akri's debugEcho discovery handler, a fake
// DH for tests and demos: it "discovers" one device per description listed in
// a Configuration's discoveryDetails,
//
//	discoveryDetails: |
//	  descriptions: [foo0, foo1]
//
// each with id = the description and the property DEBUG_ECHO_DESCRIPTION = the
// description, and no mounts or device specs; and none at all while the
// availability file (/tmp/debug-echo-availability.txt) contains OFFLINE.
//
// It owns the pure parts only, [ParseDetails], [Devices], [Available] and the
// polling loop [Watch], shared by the native handler (`wasilet debug-echo`,
// which serves them over gRPC with proto/discoveryhandler) and a Wasm handler.
// It imports no gRPC or proto package and builds for GOOS=wasip1.
//
// Differences from upstream (discovery-handlers/debug-echo): the availability
// file is polled every second by default instead of every 10 s, and its path
// and the period are options.
package debugecho
