// Package akritest is the end-to-end harness of the Akri half: an admin
// client that knows akri.sh/v0, wasilet subprocesses (controller, the native
// debugEcho handler, a standalone agent) tied to the test's lifetime, and
// polling helpers. Tests run against the real local control plane of
// internal/clustertest and wasilet nodes of internal/nodetest.
package akritest
