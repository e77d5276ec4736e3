package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containerd/errdefs"
)

var (
	coreHeader      = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	componentHeader = []byte{0x00, 'a', 's', 'm', 0x0d, 0x00, 0x01, 0x00}
)

// DetectKind tells a core module from a component by the first 8 bytes of
// the binary (magic and version/layer fields). Anything else is an
// errdefs.ErrInvalidArgument error naming what was found.
func DetectKind(wasm []byte) (Kind, error) {
	switch {
	case bytes.HasPrefix(wasm, coreHeader):
		return KindModule, nil
	case bytes.HasPrefix(wasm, componentHeader):
		return KindComponent, nil
	case len(wasm) >= 4 && bytes.Equal(wasm[:4], coreHeader[:4]):
		return 0, fmt.Errorf("unsupported wasm version/layer % x (want 01 00 00 00 for a core module or 0d 00 01 00 for a component): %w",
			wasm[4:min(len(wasm), 8)], errdefs.ErrInvalidArgument)
	}
	return 0, fmt.Errorf("not a wasm binary: header % x, want \\0asm: %w", wasm[:min(len(wasm), 8)], errdefs.ErrInvalidArgument)
}

// Program is a compiled module or component, ready to run any number of
// times, concurrently. Programs are owned by their Engine (which caches and
// shares them between callers) and freed by Engine.Close.
type Program struct {
	e      *Engine
	kind   Kind
	digest string // sha256:<hex> of the wasm binary
	impl   programImpl
}

// programImpl is what each kind of program does; Program.Run dispatches to
// it so callers never branch on the kind.
type programImpl interface {
	run(ctx context.Context, spec Spec) (Result, error)
	close()
}

// Kind says whether the program is a core module or a component.
func (p *Program) Kind() Kind { return p.kind }

// Baseline says whether the program is a tiered engine's quick compile of a
// module (see Options.Tiered) rather than its full one.
func (p *Program) Baseline() bool {
	m, ok := p.impl.(*moduleProgram)
	return ok && m.t == p.e.baseline
}

// Digest is "sha256:<hex>" of the wasm binary the program was compiled from.
func (p *Program) Digest() string { return p.digest }

// Run runs the program once with spec and reports how the guest ended; see
// Result for what is a result and what is an error. Run blocks until the
// guest has ended and its stdout and stderr are fully copied to
// spec.Stdout/spec.Stderr. Safe to call concurrently.
func (p *Program) Run(ctx context.Context, spec Spec) (res Result, err error) {
	defer func() {
		// Nothing a guest does may crash the host: a panic from the binding
		// layer becomes an error of this run.
		if r := recover(); r != nil {
			err = fmt.Errorf("run %s: internal error: %v", p.digest, r)
		}
	}()
	if err := ctx.Err(); err != nil {
		return Result{ExitCode: ExitCodeKilled, Reason: ReasonKilled, Message: "not started: " + err.Error()}, nil
	}
	if spec.Timeout > 0 && !p.e.epoch {
		return Result{}, fmt.Errorf("a timeout needs an interruptible engine (Options.Uninterruptible is set): %w", errdefs.ErrInvalidArgument)
	}
	p.e.runStarted()
	defer p.e.runDone()
	return p.impl.run(ctx, spec)
}

// loadEntry is one program in the engine's memory cache; done is closed once
// prog or err is set, so concurrent loads of one key compile once.
type loadEntry struct {
	done chan struct{}
	prog *Program
	err  error
}

// LoadFile loads a .wasm file like Load. With a CacheDir it also remembers
// the file's identity (device, inode, size, modification and change times)
// beside its digest, so that a later LoadFile of the unchanged file whose
// compiled artifact is cached reads neither the file nor hashes it: that is
// most of a warm `wasilet run` outside package initialisation (~5 ms of a
// 3 MB module). Any change to the file changes its change time, which the
// kernel sets and nobody can set back, and the file is read and hashed
// again.
func (e *Engine) LoadFile(ctx context.Context, path string) (*Program, error) {
	p, err := e.loadFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return p, nil
}

func (e *Engine) loadFile(ctx context.Context, path string) (*Program, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	id, idErr := identify(f)
	index := e.fileIndexPath(path)
	if idErr == nil && index != "" {
		// A missing artifact costs nothing extra: load reads the file
		// through the callback, checks its digest and compiles.
		if kind, key, ok := readFileIndex(index, id); ok {
			p, err := e.loadKey(ctx, kind, key, func() ([]byte, error) {
				wasm, err := readAll(f)
				if err == nil && hashHex(wasm) != key {
					err = errFileChanged
				}
				return wasm, err
			})
			if !errors.Is(err, errFileChanged) {
				return p, err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
		}
	}
	wasm, err := readAll(f)
	if err != nil {
		return nil, err
	}
	p, err := e.Load(ctx, wasm, "")
	if err == nil && idErr == nil && index != "" {
		writeFileIndex(index, id, p.kind, strings.TrimPrefix(p.digest, "sha256:"))
	}
	return p, err
}

var errFileChanged = errors.New("the file changed while it was being loaded")

// readAll reads an opened .wasm file (a variable for tests that count
// reads).
var readAll = func(f *os.File) ([]byte, error) { return io.ReadAll(f) }

// Load returns the program for a wasm binary (core module or component,
// detected from its header): from memory if this engine loaded it before,
// else from the compiled cache in Options.CacheDir, else by compiling it (and
// then writing the cache). Concurrent loads of the same binary compile once.
//
// digest may be "sha256:<hex>" of wasm when the caller already knows it (an
// OCI layer digest, verified on pull); it saves hashing the binary and is
// trusted as given. Empty: Load hashes wasm itself. ctx only bounds waiting
// for another goroutine's compilation of the same binary.
func (e *Engine) Load(ctx context.Context, wasm []byte, digest string) (*Program, error) {
	kind, err := DetectKind(wasm)
	if err != nil {
		return nil, err
	}
	key, err := cacheKey(wasm, digest)
	if err != nil {
		return nil, err
	}
	return e.loadKey(ctx, kind, key, func() ([]byte, error) { return wasm, nil })
}

// loadKey loads the program of kind with sha256 key; wasm gives its bytes
// when they are needed (a compile).
func (e *Engine) loadKey(ctx context.Context, kind Kind, key string, wasm func() ([]byte, error)) (*Program, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errClosed
	}
	if ent, ok := e.programs[key]; ok {
		e.mu.Unlock()
		select {
		case <-ent.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("load sha256:%s: %w", key, ctx.Err())
		}
		if ent.err != nil {
			return nil, ent.err
		}
		e.memoryHits.Add(1)
		return ent.prog, nil
	}
	ent := &loadEntry{done: make(chan struct{})}
	e.programs[key] = ent
	e.mu.Unlock()

	var optimize []byte
	ent.prog, optimize, ent.err = e.load(kind, key, wasm)
	if ent.err != nil {
		// Forget failures so a later load tries again.
		e.mu.Lock()
		if e.programs != nil {
			delete(e.programs, key)
		}
		e.mu.Unlock()
	}
	close(ent.done)
	if optimize != nil {
		e.optimizeLater(ent, kind, key, optimize)
	}
	return ent.prog, ent.err
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// cacheKey is the hex sha256 of wasm, taken from digest when given.
func cacheKey(wasm []byte, digest string) (string, error) {
	if digest == "" {
		return hashHex(wasm), nil
	}
	hexsum, ok := strings.CutPrefix(digest, "sha256:")
	if b, err := hex.DecodeString(hexsum); !ok || err != nil || len(b) != sha256.Size || strings.ToLower(hexsum) != hexsum {
		return "", fmt.Errorf("digest %q is not sha256:<64 lowercase hex digits>: %w", digest, errdefs.ErrInvalidArgument)
	}
	return hexsum, nil
}

// load finds or compiles one program; it is called once per key at a time.
// With Options.Tiered, a core module compiled here gets the baseline tier,
// and load also returns its wasm for optimizeLater.
func (e *Engine) load(kind Kind, key string, wasmFn func() ([]byte, error)) (*Program, []byte, error) {
	var be backend
	switch kind {
	case KindModule:
		be = moduleBackend{e, e.opt}
	case KindComponent:
		var err error
		if be, err = e.componentBackend(); err != nil {
			return nil, nil, err
		}
	}
	p := &Program{e: e, kind: kind, digest: "sha256:" + key}
	path := e.artifactPath(key, kind)
	if path != "" {
		if e.verifyArtifact(path) {
			impl, err := be.deserialize(path)
			if err == nil {
				e.diskHits.Add(1)
				p.impl = impl
				return p, nil, nil
			}
			// Valid checksum but wasmtime refuses it (e.g. another CPU
			// feature set): discard and compile again.
			e.discardArtifact(path)
		}
	}
	wasm, err := wasmFn()
	if err != nil {
		return nil, nil, err
	}
	if kind == KindModule && e.baseline != nil {
		// Should the baseline compile fail, the full one below says why.
		if impl, err := (moduleBackend{e, e.baseline}).compile(wasm); err == nil {
			e.baselineCompiles.Add(1)
			p.impl = impl
			return p, wasm, nil
		}
	}
	impl, err := be.compile(wasm)
	if err != nil {
		return nil, nil, fmt.Errorf("compile %s sha256:%s: %w", kind, key, err)
	}
	e.compiles.Add(1)
	// The artifact is written while the program starts: serializing and
	// writing a 3 MB module's 9.8 MB artifact takes ~20 ms that no start
	// needs to wait for. Close waits for the writes.
	if e.cacheDir != "" {
		e.mu.Lock()
		async := !e.closed // else Close may be waiting already
		if async {
			e.writes.Add(1)
		}
		e.mu.Unlock()
		if async {
			go func() {
				defer e.writes.Done()
				e.writeCache(key, kind, impl)
			}()
		} else {
			e.writeCache(key, kind, impl)
		}
	}
	p.impl = impl
	return p, nil, nil
}

// writeCache writes the artifact of a fully compiled program when the
// engine has a CacheDir; a failure is counted, not returned (the program
// runs anyway).
func (e *Engine) writeCache(key string, kind Kind, impl compiledImpl) {
	path := e.artifactPath(key, kind)
	if path == "" {
		return
	}
	payload, err := impl.serialize()
	if err == nil {
		err = writeArtifact(path, payload)
	}
	if err != nil {
		e.cacheWriteErrors.Add(1)
	}
}

// backend compiles and deserializes one kind of program.
type backend interface {
	compile(wasm []byte) (compiledImpl, error)
	// deserialize loads a verified artifact: path is the cache file holding
	// it followed by the trailer.
	deserialize(path string) (compiledImpl, error)
}

// compiledImpl is a program that can also be written to the compiled cache.
type compiledImpl interface {
	programImpl
	serialize() ([]byte, error)
}

// Forget drops the program of the wasm binary with the given digest
// ("sha256:<hex>") from the engine's memory cache, so the next Load of it
// comes from disk, and its compiled code is freed once no caller holds the
// Program any more (Programs already handed out stay valid). The node calls
// it when no pod uses an image. It reports whether the program was cached.
func (e *Engine) Forget(digest string) bool {
	key, err := cacheKey(nil, digest)
	if err != nil || digest == "" {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ent, ok := e.programs[key]
	if !ok {
		return false
	}
	select {
	case <-ent.done:
	default:
		return false // still loading: leave it to its waiters
	}
	delete(e.programs, key)
	return true
}
