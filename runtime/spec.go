package runtime

import (
	"io"
	"time"
)

// Kind says whether a Wasm binary is a core module (WASI p1) or a component
// (WASI p2). Callers never branch on it: Engine.Load detects it and Program.Run
// treats both alike.
type Kind int

const (
	KindModule Kind = iota + 1
	KindComponent
)

func (k Kind) String() string {
	switch k {
	case KindModule:
		return "module"
	case KindComponent:
		return "component"
	}
	return "unknown"
}

// Mount is a host directory preopened for the guest at GuestPath. The guest
// cannot reach outside it: "..", absolute paths elsewhere and symlinks
// pointing out of it are refused by wasmtime's capability-based filesystem.
// HostPath must be an existing directory (else Run fails with an error).
type Mount struct {
	HostPath  string
	GuestPath string
	// ReadOnly grants only read permissions on the directory and its files:
	// the guest cannot create, write, rename or delete anything in it.
	ReadOnly bool
}

// Spec is everything one run of a program needs. The zero value of each field
// means "none": no args, no env, no preopens, empty stdin, discarded output,
// no memory limit beyond the engine's default, no timeout.
type Spec struct {
	// Name is argv[0] ("main.wasm" if empty); Args follow it.
	Name string
	Args []string
	// Env holds KEY=VALUE pairs, in order; a later duplicate key wins (in
	// the position of the first). An entry without "=" is an
	// errdefs.ErrInvalidArgument error from Run.
	Env    []string
	Mounts []Mount
	// Stdin is copied to the guest's stdin until EOF (nil: empty stdin).
	// Run does not wait for a Stdin that never returns from Read.
	Stdin io.Reader
	// Stdout and Stderr receive the guest's output (nil: discarded). Run
	// returns only after everything the guest wrote has been written here;
	// a Write error does not stop the guest (its further output is dropped).
	// Each is written by its own goroutine, so the two run concurrently: if
	// they share an underlying writer, it must allow that.
	Stdout io.Writer
	Stderr io.Writer
	// MemoryLimit caps each linear memory of the guest, in bytes (0: no
	// cap). Growth beyond it fails inside the guest; see Result for how that
	// becomes ReasonOOMKilled.
	MemoryLimit int64
	// Timeout stops the guest after this long (0: none); cancelling the
	// context passed to Run stops it too.
	Timeout time.Duration
	// Usage, when set, is kept up to date with the run's CPU time and
	// memory while it runs (see Usage); nil costs nothing.
	Usage *Usage
}

// Reason says how a run ended, in the words the kubelet uses for container
// termination where one exists.
type Reason string

const (
	ReasonCompleted Reason = "Completed" // exit code 0
	ReasonError     Reason = "Error"     // non-zero exit code or trap
	ReasonOOMKilled Reason = "OOMKilled" // the guest needed more memory than MemoryLimit
	ReasonKilled    Reason = "Killed"    // stopped by context cancellation or Timeout
)

// Result is how a guest ended. A guest's failure (exit code, trap, memory
// exhaustion, being stopped) is a Result, not an error: errors from Run are
// the host's own failures or a program that cannot be run at all (a preopen
// directory that does not exist, an import the host does not provide, no
// _start / wasi:cli/run export; those wrap errdefs.ErrInvalidArgument).
//
// Exit codes:
//   - the guest's own exit status, 0–255 (a core module's proc_exit status
//     modulo 256; a WASI 0.2 component can only exit 0 or 1);
//   - ExitCodeTrap (134) for a trap, Reason Error, Message the trap text;
//   - ExitCodeKilled (137) for Killed and OOMKilled, as the kubelet reports
//     a container killed by a signal or the OOM killer.
//
// OOMKilled is inferred, as wasmtime does not report refused memory growth:
// a guest that failed (non-zero exit or trap) under a MemoryLimit, whose
// linear memory ended within 8 MiB of the limit or whose stderr ends with a
// runtime's out-of-memory message (Go's "out of memory", Rust's "memory
// allocation of N bytes failed"), or a program whose initial memory alone
// exceeds the limit.
type Result struct {
	ExitCode int
	Reason   Reason
	// Message is a short human text: "exit code 3", the trap message,
	// "out of memory: limit 64Mi (…)", "stopped after 5s", "stopped: run
	// cancelled", or empty on success.
	Message string
}
