package runtime

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// The engine's one linker holds wasmtime's WASI p1 implementation with two
// functions replaced by our own (linkers are safe to share between stores):
//
//   - proc_exit: wasmtime accepts only exit codes below 126 and turns the
//     others into an anonymous error; ours records any code (reported modulo
//     256, like a POSIX exit status) and unwinds the guest with a trap.
//   - poll_oneoff: wasmtime's blocks the guest's thread in the host for the
//     whole timeout, where epoch interruption cannot reach it, so a sleeping
//     guest could not be stopped until it woke up. Ours waits for clock
//     subscriptions in Go, selecting on the run's context, so a sleeping
//     guest stops at once. Subscriptions on descriptors (non-blocking sockets
//     and pipes, rare in WASI p1 programs) cannot be polled from outside
//     wasmtime's descriptor table: ours reports them ready after at most
//     10 ms, which a guest doing non-blocking I/O handles by retrying.

const wasiModule = "wasi_snapshot_preview1"

// WASI p1 errno values used here.
const (
	errnoSuccess = 0
	errnoFault   = 21
	errnoInval   = 28
)

// runState is the per-run data reachable from host functions through the
// store (wasmtime.Caller.Data).
type runState struct {
	exited   bool
	exitCode uint32
	// done is closed when the run is asked to stop.
	done <-chan struct{}
	// monotonicStart approximates the zero of the guest's monotonic clock
	// (wasmtime counts it from WASI context creation).
	monotonicStart time.Time
	// usage is Spec.Usage (may be nil).
	usage *Usage
}

var errInterrupted = "wasilet: guest interrupted"

func newWASILinker(engine *wasmtime.Engine) (*wasmtime.Linker, error) {
	l := wasmtime.NewLinker(engine)
	if err := l.DefineWasi(); err != nil {
		l.Close()
		return nil, fmt.Errorf("define wasi: %w", err)
	}
	l.AllowShadowing(true)
	if err := l.FuncWrap(wasiModule, "proc_exit", procExit); err != nil {
		l.Close()
		return nil, fmt.Errorf("define proc_exit: %w", err)
	}
	if err := l.FuncWrap(wasiModule, "poll_oneoff", pollOneoff); err != nil {
		l.Close()
		return nil, fmt.Errorf("define poll_oneoff: %w", err)
	}
	l.AllowShadowing(false)
	return l, nil
}

func stateOf(c *wasmtime.Caller) *runState {
	rs, _ := c.Data().(*runState)
	return rs
}

func procExit(c *wasmtime.Caller, code int32) *wasmtime.Trap {
	if rs := stateOf(c); rs != nil {
		rs.exited = true
		rs.exitCode = uint32(code)
	}
	return wasmtime.NewTrap(fmt.Sprintf("wasilet: guest exited with code %d", uint32(code)))
}

const (
	subscriptionSize = 48
	eventSize        = 32

	eventClock   = 0
	eventFdRead  = 1
	eventFdWrite = 2

	clockRealtime  = 0
	clockMonotonic = 1

	subclockAbstime = 1
)

// pollOneoff implements wasi_snapshot_preview1.poll_oneoff(in, out, nsubs,
// nevents_ptr) -> errno; see the file comment.
func pollOneoff(c *wasmtime.Caller, in, out, nsubs, neventsPtr int32) (int32, *wasmtime.Trap) {
	rs := stateOf(c)
	ext := c.GetExport("memory")
	if rs == nil || ext == nil || ext.Memory() == nil {
		return errnoFault, nil
	}
	mem := ext.Memory().UnsafeData(c)
	rs.usage.setMemory(int64(len(mem))) // a guest about to sleep
	n := int64(uint32(nsubs))
	if n == 0 {
		return errnoInval, nil
	}
	inOff, outOff, nevOff := int64(uint32(in)), int64(uint32(out)), int64(uint32(neventsPtr))
	memLen := int64(len(mem))
	if inOff+n*subscriptionSize > memLen || outOff+n*eventSize > memLen || nevOff+4 > memLen {
		return errnoFault, nil
	}

	type sub struct {
		userdata uint64
		tag      uint8
		deadline time.Time
	}
	now := time.Now()
	subs := make([]sub, n)
	earliest := time.Time{}
	hasFD := false
	for i := range subs {
		b := mem[inOff+int64(i)*subscriptionSize:]
		s := sub{userdata: binary.LittleEndian.Uint64(b[0:8]), tag: b[8]}
		switch s.tag {
		case eventClock:
			id := binary.LittleEndian.Uint32(b[16:20])
			timeout := binary.LittleEndian.Uint64(b[24:32])
			flags := binary.LittleEndian.Uint16(b[40:42])
			if flags&subclockAbstime == 0 {
				s.deadline = now.Add(durationOf(timeout))
			} else {
				switch id {
				case clockRealtime:
					s.deadline = time.Unix(0, int64(min(timeout, 1<<63-1)))
				case clockMonotonic:
					s.deadline = rs.monotonicStart.Add(durationOf(timeout))
				default: // CPU-time clocks: treat as already due
					s.deadline = now
				}
			}
			if earliest.IsZero() || s.deadline.Before(earliest) {
				earliest = s.deadline
			}
		case eventFdRead, eventFdWrite:
			hasFD = true
		default:
			return errnoInval, nil
		}
		subs[i] = s
	}

	wait := time.Duration(-1) // forever
	if !earliest.IsZero() {
		wait = max(earliest.Sub(now), 0)
	}
	if hasFD && (wait < 0 || wait > 10*time.Millisecond) {
		wait = 10 * time.Millisecond
	}
	if wait != 0 {
		var timer <-chan time.Time
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-rs.done:
			return 0, wasmtime.NewTrap(errInterrupted)
		case <-timer:
		}
	}

	// Nothing else runs in this store while the guest waits here, but take
	// the memory afresh rather than rely on that.
	mem = ext.Memory().UnsafeData(c)
	if outOff+n*eventSize > int64(len(mem)) || nevOff+4 > int64(len(mem)) {
		return errnoFault, nil
	}
	now = time.Now()
	var nev int64
	for _, s := range subs {
		if s.tag == eventClock && now.Before(s.deadline) {
			continue
		}
		e := mem[outOff+nev*eventSize : outOff+(nev+1)*eventSize]
		clear(e)
		binary.LittleEndian.PutUint64(e[0:8], s.userdata)
		e[10] = s.tag
		nev++
	}
	binary.LittleEndian.PutUint32(mem[nevOff:nevOff+4], uint32(nev))
	return errnoSuccess, nil
}

func durationOf(ns uint64) time.Duration {
	if ns > uint64(1<<63-1) {
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(ns)
}
