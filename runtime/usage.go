package runtime

/*
#include <pthread.h>
#include <stdint.h>
#include <time.h>

// wasilet_thread_clock gets the CPU-time clock of the calling thread, which
// any thread of the process may read while that thread lives.
static int wasilet_thread_clock(clockid_t *id) {
	return pthread_getcpuclockid(pthread_self(), id);
}

// wasilet_clock_ns reads a clock in nanoseconds, -1 on error.
static int64_t wasilet_clock_ns(clockid_t id) {
	struct timespec ts;
	if (clock_gettime(id, &ts) != 0) {
		return -1;
	}
	return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}
*/
import "C"

import (
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Usage is the resource use of one run of a guest, for the node's stats
// (kubectl top): pass a new Usage in Spec.Usage and call Sample from any
// goroutine while (and after) Run runs. Use one Usage per Run call; Run
// resets it when it starts. The zero value is ready to use; a Usage must not
// be copied after first use.
//
// CPU is the CPU time of the OS thread that runs the guest: Run pins itself
// to one thread (runtime.LockOSThread) for the whole run when Spec.Usage is
// set, and Sample reads that thread's CPU clock (pthread_getcpuclockid), so
// the value is exact at the moment of sampling and includes time the guest
// spends in host calls made on its thread (WASI I/O), not the host's
// goroutines that copy stdout/stderr. The same holds for components.
//
// Memory is the size of the guest's linear memory (the export "memory") in
// bytes, the memory a guest can use: a core module's is updated on every
// epoch tick (100 ms) while the guest executes wasm code, whenever it sleeps
// or polls (poll_oneoff), after instantiation and at its end. A component's
// linear memories are inside the component and not reachable through
// wasmtime's C API, so for components Memory is -1 (unknown).
type Usage struct {
	// memory is written by the epoch callback (C, through a pinned pointer)
	// and by Run; read by Sample.
	memory atomic.Int64

	mu      sync.Mutex
	running bool
	clockOK bool        // clock and cpuBase are valid
	clock   C.clockid_t // the guest thread's CPU clock, while running
	cpuBase int64       // clock reading at start
	cpu     int64       // last known CPU time of the run, ns
	started time.Time
}

// UsageSample is one reading of a Usage.
type UsageSample struct {
	// Time is when the sample was taken.
	Time time.Time
	// StartTime is when the run started (zero: not started).
	StartTime time.Time
	// Running says the guest was still running at Time.
	Running bool
	// CPU is the guest thread's CPU time since the run started.
	CPU time.Duration
	// Memory is the guest's linear memory in bytes, -1 when unknown
	// (components; see Usage).
	Memory int64
}

// Sample reads the usage now. Safe for concurrent use with Run.
func (u *Usage) Sample() UsageSample {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	u.readCPU()
	return UsageSample{
		Time: now, StartTime: u.started, Running: u.running,
		CPU: time.Duration(u.cpu), Memory: u.memory.Load(),
	}
}

// begin starts accounting a run on the calling goroutine, which it locks to
// its OS thread until the returned end is called (on the same goroutine).
// memoryKnown false records Memory as -1. u may be nil: then begin does
// nothing.
func (u *Usage) begin(memoryKnown bool) (end func()) {
	if u == nil {
		return func() {}
	}
	goruntime.LockOSThread()
	var clock C.clockid_t
	base := int64(-1)
	if C.wasilet_thread_clock(&clock) == 0 {
		base = int64(C.wasilet_clock_ns(clock))
	}
	u.mu.Lock()
	u.running, u.clockOK = true, base >= 0
	u.clock, u.cpuBase, u.cpu = clock, base, 0
	u.started = time.Now()
	if memoryKnown {
		u.memory.Store(0)
	} else {
		u.memory.Store(-1)
	}
	u.mu.Unlock()
	return func() {
		u.mu.Lock()
		u.readCPU()
		u.running, u.clockOK = false, false
		u.mu.Unlock()
		// Only now may the thread run other goroutines: Sample no longer
		// reads its clock.
		goruntime.UnlockOSThread()
	}
}

// readCPU updates u.cpu from the guest thread's clock while the run is in
// progress; u.mu must be held. CPU time never goes backwards.
func (u *Usage) readCPU() {
	if !u.running || !u.clockOK {
		return
	}
	if t := int64(C.wasilet_clock_ns(u.clock)); t >= 0 && t-u.cpuBase > u.cpu {
		u.cpu = t - u.cpuBase
	}
}

// setMemory records a memory size observed by the host.
func (u *Usage) setMemory(n int64) {
	if u != nil {
		u.memory.Store(n)
	}
}
