// Package version reports what this build of wasilet is: its own version and
// commit (set with -ldflags at build time), the Go toolchain, and the version of
// the wasmtime library linked in (read from the build's module list).
package version
