// Package handlers holds the Go sources of the Wasm programs wasilet ships and
// tests with, each built to wasip1 (and wrapped as a WASI p2 component) by
// `just wasm`: the test program the runtime and node tests drive, and later the
// Akri discovery handlers and brokers.
package handlers
