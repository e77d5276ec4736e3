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

// Mount is a host directory preopened for the guest at GuestPath.
type Mount struct {
	HostPath  string
	GuestPath string
	ReadOnly  bool
}

// Spec is everything one run of a program needs. The zero value of each field
// means "none": no args, no env, no preopens, empty stdin, discarded output,
// no memory limit beyond the engine's default, no timeout.
type Spec struct {
	// Name is argv[0]; Args follow it.
	Name string
	Args []string
	// Env holds KEY=VALUE pairs, in order; a later duplicate key wins.
	Env    []string
	Mounts []Mount
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// MemoryLimit caps the guest's linear memory in bytes (0: no cap).
	MemoryLimit int64
	// Timeout stops the guest after this long (0: none); cancelling the
	// context passed to Run stops it too.
	Timeout time.Duration
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
// the host's own failures (cannot open a preopen directory, and the like).
type Result struct {
	ExitCode int
	Reason   Reason
	// Message is a short human text: the trap message, "out of memory: limit
	// 64Mi", "stopped after 5s", or empty on success.
	Message string
}
