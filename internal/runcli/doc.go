// Package runcli is `wasilet run`: its flags, the guest's spec built from
// them, running a core module or component with the runtime package, and the
// process's exit status. The wasilet command's cobra verb uses it for every
// target (a local file, or an OCI reference it pulls first); Early runs a
// local file before the rest of the binary has initialized.
//
// Why Early exists: the wasilet binary links the Kubernetes client
// libraries, controller-runtime, gRPC and their registries, and their
// package initializers ran before every command: `wasilet run` of a cached
// module took 32 ms (median, whole process) where a binary linking only the
// runtime package ran it in 8 ms. Go initializes packages in dependency
// order, choosing among the ready ones by import path; this package needs
// only the runtime package and the standard library, so
// cmd/wasilet/internal/early, which calls Early from its init function,
// runs after about a fifth of the binary's initialization work (what sorts
// before runtime/debug, which the runtime package needs) and exits before
// the rest: 13 ms for the same run. It does not import pflag, whose import
// of net (which waits for weak and unique, sorting last) would hold it back
// further: the flags are one list (Flags.List) that the cobra verb defines
// on its pflag set and Early's parser reads the way pflag does
// (TestParseAgreesWithPflag). Early handles exactly the command lines it can
// finish alone — `run` with flags that parse and an existing regular file —
// and declines everything else (help, a flag error, a reference to pull),
// which the cobra command then handles and reports as before.
package runcli
