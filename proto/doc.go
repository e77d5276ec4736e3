// Package proto owns the generated gRPC code of the Akri discovery protocol
// (package v0). It is a leaf: generated code only, importing no wasilet package.
package proto
