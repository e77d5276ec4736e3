package wasmtimec

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// Preopen is a host directory the guest sees at GuestPath.
type Preopen struct {
	HostPath  string
	GuestPath string
	// ReadOnly grants only read permissions on the directory and its files:
	// the guest cannot create, write, rename or delete anything in it.
	ReadOnly bool
}

// RunConfig is the WASI p2 environment of one run.
type RunConfig struct {
	// Args is the full argv; Args[0] is the program name. Empty: no argv.
	Args []string
	// Env holds KEY=VALUE pairs; for a repeated key the last value wins.
	Env      []string
	Preopens []Preopen
	// Stdin is a path opened for reading as the guest's stdin ("" = empty).
	// Stdout and Stderr are paths opened with create+truncate (like
	// File::create) for the guest's output ("" = discarded). The runtime
	// passes the /proc/self/fd/N paths of pipes it reads.
	Stdin, Stdout, Stderr string
	// MemoryLimit caps each linear memory of the instance, in bytes
	// (0: no cap beyond the engine's). Growth beyond it fails inside the
	// guest (memory.grow returns -1), as wasmtime's store limiter does.
	MemoryLimit int64
}

// Outcome says how a run ended.
type Outcome int

const (
	// Returned: wasi:cli/run#run returned; ExitCode is 0 for ok, 1 for err.
	Returned Outcome = iota + 1
	// Exited: the guest called wasi:cli/exit; ExitCode is its status. With
	// WASI 0.2 exit(result) that is 0 or 1 only (see doc.go).
	Exited
	// Trapped: the guest trapped or a host call failed fatally; ExitCode
	// is 1 and Message is wasmtime's message.
	Trapped
	// Cancelled: the context was done; the guest was stopped at an epoch
	// tick (or never started). ExitCode is 1.
	Cancelled
)

func (o Outcome) String() string {
	switch o {
	case Returned:
		return "returned"
	case Exited:
		return "exited"
	case Trapped:
		return "trapped"
	case Cancelled:
		return "cancelled"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// RunResult is how one run of a component ended.
type RunResult struct {
	Outcome  Outcome
	ExitCode int
	// Message is wasmtime's one-line text for Trapped and Cancelled (e.g.
	// "wasm trap: wasm `unreachable` instruction executed"), else empty.
	Message string
	// Detail is wasmtime's full text for Trapped and Cancelled, including
	// the guest's wasm backtrace.
	Detail string
}

// ErrNotCommand is returned by Run for a component without a
// wasi:cli/run@0.2.x export.
var ErrNotCommand = errors.New("component does not export wasi:cli/run@0.2.x (not a WASI command)")

// InstantiateError is returned by Run when wasmtime refuses to instantiate
// the component, e.g. because it imports something the host does not
// provide (the message names the import) or because its initial memory
// exceeds MemoryLimit.
type InstantiateError struct {
	Err *Error
	// MemoryLimit is set when the instance was refused because a linear
	// memory's initial size exceeds RunConfig.MemoryLimit (the runtime
	// reports that as OOMKilled).
	MemoryLimit bool
}

func (e *InstantiateError) Error() string { return "instantiate component: " + e.Err.Message }

func (e *InstantiateError) Unwrap() error { return e.Err }

// Run instantiates the component in a fresh store with the WASI p2
// environment cfg and calls its wasi:cli/run#run export. The guest's own
// ending (returned, exit, trap, cancellation) is the RunResult; an error
// means the run could not happen (bad config, a preopen or stdio path that
// cannot be opened, instantiation refused, component closed).
//
// Cancelling ctx sets the run's stop flag and advances the engine's epoch,
// so a guest running Wasm code stops at its next epoch check (the engine
// must have epoch interruption enabled). A guest blocked inside a host call
// (reading stdin, sleeping) stops only when that call returns.
//
// Run is safe for concurrent use; every call has its own store.
func (c *Component) Run(ctx context.Context, cfg RunConfig) (RunResult, error) {
	if err := c.acquire(); err != nil {
		return RunResult{}, err
	}
	defer c.release()
	if c.runFunc == nil {
		return RunResult{}, ErrNotCommand
	}
	if err := ctx.Err(); err != nil {
		return RunResult{Outcome: Cancelled, ExitCode: 1, Message: "not started: " + err.Error()}, nil
	}
	ep, err := enginePtr(c.engine)
	if err != nil {
		return RunResult{}, err
	}
	wasi, err := newWASIConfig(cfg)
	if err != nil {
		return RunResult{}, err
	}

	cancel := C.wasmtimec_cancel_new()
	if cancel == nil {
		C.wasi_config_delete(wasi)
		return RunResult{}, errors.New("run component: out of memory")
	}
	// The flag lives in C memory; the AfterFunc may fire while the guest
	// runs, and must not touch the flag once it has been freed.
	var mu sync.Mutex
	freed := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !freed {
			stopGuest(cancel, c.engine)
		}
	})

	var out C.wasmtimec_run_result_t
	C.wasmtimec_run(ep, c.ptr, c.linker, c.runFunc, wasi, C.int64_t(cfg.MemoryLimit), cancel, &out)
	runtime.KeepAlive(c.engine)

	stop()
	mu.Lock()
	freed = true
	C.wasmtimec_cancel_free(cancel)
	mu.Unlock()

	msg := newError(takeCString(out.message))
	code := int(out.exit_code)
	switch out.status {
	case C.WASILET_RUN_RETURNED:
		return RunResult{Outcome: Returned, ExitCode: code}, nil
	case C.WASILET_RUN_EXITED:
		return RunResult{Outcome: Exited, ExitCode: code}, nil
	case C.WASILET_RUN_FAILED:
		return RunResult{Outcome: Trapped, ExitCode: 1, Message: msg.Message, Detail: msg.Detail}, nil
	case C.WASILET_RUN_CANCELLED:
		return RunResult{Outcome: Cancelled, ExitCode: 1, Message: msg.Message, Detail: msg.Detail}, nil
	case C.WASILET_RUN_INSTANTIATE:
		return RunResult{}, &InstantiateError{
			Err:         msg,
			MemoryLimit: cfg.MemoryLimit > 0 && strings.Contains(msg.Message, "exceeds memory limits"),
		}
	default:
		return RunResult{}, fmt.Errorf("run component: %w", msg)
	}
}

// newWASIConfig builds a wasi_config_t from cfg. The caller owns the result.
func newWASIConfig(cfg RunConfig) (*C.wasi_config_t, error) {
	env, err := dedupeEnv(cfg.Env)
	if err != nil {
		return nil, err
	}
	for _, s := range cfg.Args {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("argument %q contains a NUL byte", s)
		}
	}
	for _, p := range append([]string{cfg.Stdin, cfg.Stdout, cfg.Stderr}, preopenPaths(cfg.Preopens)...) {
		if strings.IndexByte(p, 0) >= 0 {
			return nil, fmt.Errorf("path %q contains a NUL byte", p)
		}
	}
	w := C.wasi_config_new()
	ok := false
	defer func() {
		if !ok {
			C.wasi_config_delete(w)
		}
	}()
	var strs cStrings
	defer strs.free()

	if len(cfg.Args) > 0 {
		argv := make([]*C.char, len(cfg.Args))
		for i, a := range cfg.Args {
			argv[i] = strs.add(a)
		}
		// A Go slice holding C pointers only: allowed for the call.
		if !C.wasi_config_set_argv(w, C.size_t(len(argv)), &argv[0]) {
			return nil, errors.New("set argv: arguments are not valid UTF-8")
		}
	}
	if len(env) > 0 {
		names := make([]*C.char, len(env))
		values := make([]*C.char, len(env))
		for i, kv := range env {
			names[i] = strs.add(kv[0])
			values[i] = strs.add(kv[1])
		}
		if !C.wasi_config_set_env(w, C.size_t(len(env)), &names[0], &values[0]) {
			return nil, errors.New("set env: variables are not valid UTF-8")
		}
	}
	for _, p := range cfg.Preopens {
		if p.HostPath == "" || p.GuestPath == "" {
			return nil, fmt.Errorf("preopen %q -> %q: empty path", p.HostPath, p.GuestPath)
		}
		dirPerms := C.wasi_dir_perms(C.WASILET_WASI_DIR_PERMS_READ)
		filePerms := C.wasi_file_perms(C.WASILET_WASI_FILE_PERMS_READ)
		if !p.ReadOnly {
			dirPerms |= C.WASILET_WASI_DIR_PERMS_WRITE
			filePerms |= C.WASILET_WASI_FILE_PERMS_WRITE
		}
		if !C.wasi_config_preopen_dir(w, strs.add(p.HostPath), strs.add(p.GuestPath), dirPerms, filePerms) {
			return nil, fmt.Errorf("preopen %s as %s: cannot open the host directory", p.HostPath, p.GuestPath)
		}
	}
	if cfg.Stdin != "" && !C.wasi_config_set_stdin_file(w, strs.add(cfg.Stdin)) {
		return nil, fmt.Errorf("stdin: cannot open %s", cfg.Stdin)
	}
	if cfg.Stdout != "" && !C.wasi_config_set_stdout_file(w, strs.add(cfg.Stdout)) {
		return nil, fmt.Errorf("stdout: cannot create %s", cfg.Stdout)
	}
	if cfg.Stderr != "" && !C.wasi_config_set_stderr_file(w, strs.add(cfg.Stderr)) {
		return nil, fmt.Errorf("stderr: cannot create %s", cfg.Stderr)
	}
	ok = true
	return w, nil
}

func preopenPaths(ps []Preopen) []string {
	out := make([]string, 0, 2*len(ps))
	for _, p := range ps {
		out = append(out, p.HostPath, p.GuestPath)
	}
	return out
}

// dedupeEnv splits KEY=VALUE pairs; a later value of a key replaces an
// earlier one in place.
func dedupeEnv(env []string) ([][2]string, error) {
	out := make([][2]string, 0, len(env))
	index := make(map[string]int, len(env))
	for _, kv := range env {
		k, v, found := strings.Cut(kv, "=")
		if !found || k == "" {
			return nil, fmt.Errorf("environment entry %q is not KEY=VALUE", kv)
		}
		if strings.IndexByte(kv, 0) >= 0 {
			return nil, fmt.Errorf("environment entry %q contains a NUL byte", kv)
		}
		if i, dup := index[k]; dup {
			out[i][1] = v
			continue
		}
		index[k] = len(out)
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// cStrings frees the C strings it made.
type cStrings []*C.char

func (s *cStrings) add(v string) *C.char {
	p := C.CString(v)
	*s = append(*s, p)
	return p
}

func (s *cStrings) free() {
	for _, p := range *s {
		C.free(unsafe.Pointer(p))
	}
	*s = nil
}
