// Package oci owns moving Wasm artifacts between OCI registries and the node:
// pull by tag or digest in every accepted Wasm layout, push in the CNCF Wasm
// artifact layout, a content-addressed local store with digest verification and
// garbage collection, and registry credentials. It is a leaf: it imports no
// other wasilet package.
package oci
