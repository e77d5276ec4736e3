// Package agent owns the Akri agent of a wasilet node: the discovery-handler
// registry (Akri gRPC protocol v0), turning discovered devices into Instance
// objects, and one device plugin per Instance fed into the node's device-plugin
// manager. It sits on top of the node and is built after it (see the roadmap).
package agent
