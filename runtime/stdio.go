package runtime

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// wasmtime takes file paths for the guest's standard streams, while Spec
// carries io.Reader/io.Writer. Each stream is therefore a pipe: wasmtime
// opens the guest end by its /proc/self/fd path, and a goroutine copies the
// host end. Our own descriptor of the guest end is closed (releaseGuestEnds)
// once wasmtime has opened it: for modules right after configuring WASI, for
// components after the run. When wasmtime deletes the store it closes its
// descriptors, the output copiers see EOF, and wait returns once every byte
// has been written to the Spec's writers.

type stdio struct {
	copiers sync.WaitGroup
	// guestEnds are our descriptors of the pipe ends wasmtime opens.
	guestEnds []*os.File
	// stdinW is the host end of the stdin pipe (nil without Stdin).
	stdinW    *os.File
	closeOnce sync.Once
}

// procFD names an open descriptor of this process as a path.
func procFD(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// output returns the path wasmtime should open for an output stream and
// starts the copier to w.
func (s *stdio) output(w io.Writer) (string, error) {
	r, pw, err := os.Pipe()
	if err != nil {
		return "", err
	}
	s.guestEnds = append(s.guestEnds, pw)
	s.copiers.Add(1)
	go func() {
		defer s.copiers.Done()
		defer r.Close()
		// On a writer error keep draining, so the guest never blocks on a
		// full pipe because a log sink failed.
		if _, err := io.Copy(w, r); err != nil {
			_, _ = io.Copy(io.Discard, r)
		}
	}()
	return procFD(pw), nil
}

// input returns the path wasmtime should open for stdin and starts feeding
// rd into it.
func (s *stdio) input(rd io.Reader) (string, error) {
	pr, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	s.guestEnds = append(s.guestEnds, pr)
	s.stdinW = w
	go func() {
		// Not waited for: rd may block forever (a terminal). Closing w in
		// closeStdin makes a pending write fail and ends this goroutine as
		// soon as rd returns.
		_, _ = io.Copy(w, rd)
		s.closeStdin()
	}()
	return procFD(pr), nil
}

// releaseGuestEnds closes our descriptors of the guest ends (idempotent).
func (s *stdio) releaseGuestEnds() {
	for _, f := range s.guestEnds {
		f.Close()
	}
	s.guestEnds = nil
}

// closeStdin gives the guest EOF on stdin (idempotent).
func (s *stdio) closeStdin() {
	if s.stdinW != nil {
		s.closeOnce.Do(func() { s.stdinW.Close() })
	}
}

// wait returns when stdout and stderr are fully copied; wasmtime must have
// closed its descriptors (store deleted) and releaseGuestEnds been called.
func (s *stdio) wait() { s.copiers.Wait() }

// oomWatch is an io.Writer that notes whether a language runtime's
// out-of-memory message went through it (see hasOOMMessage), anywhere in the
// stream: Go prints every goroutine's traceback after "fatal error: out of
// memory", so the message is rarely near the end. It keeps only a short
// carry, so a message split across two writes is still seen.
type oomWatch struct {
	mu    sync.Mutex
	carry []byte
	seen  bool
}

const oomCarry = 64

func (o *oomWatch) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen {
		return len(p), nil
	}
	window := append(o.carry, p...)
	o.seen = hasOOMMessage(window)
	if len(window) > oomCarry {
		window = window[len(window)-oomCarry:]
	}
	o.carry = append(o.carry[:0:0], window...)
	return len(p), nil
}

// Seen reports whether an out-of-memory message was written.
func (o *oomWatch) Seen() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen
}

// hasOOMMessage recognises the out-of-memory messages of language runtimes:
// Go's "fatal error: out of memory" and Rust's "memory allocation of N bytes
// failed".
func hasOOMMessage(b []byte) bool {
	s := bytes.ToLower(b)
	if bytes.Contains(s, []byte("out of memory")) {
		return true
	}
	i := bytes.Index(s, []byte("memory allocation of"))
	return i >= 0 && bytes.Contains(s[i:], []byte("failed"))
}

func writerOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// teeOOM writes to w and to an oomWatch; a failing w does not stop the
// watch from seeing the stream.
type teeOOM struct {
	w     io.Writer
	watch *oomWatch
}

func multiWriter(w io.Writer, watch *oomWatch) io.Writer { return teeOOM{w, watch} }

func (t teeOOM) Write(p []byte) (int, error) {
	t.watch.Write(p)
	return t.w.Write(p)
}

// configure creates the pipes for spec's streams and hands their paths to
// the setters. Stderr is always captured (its tail feeds out-of-memory
// detection); stdout only when spec.Stdout is set; stdin when spec.Stdin is.
func (s *stdio) configure(spec Spec, stderrOOM *oomWatch, setStdin, setStdout, setStderr func(string) error) error {
	if spec.Stdin != nil {
		p, err := s.input(spec.Stdin)
		if err == nil {
			err = setStdin(p)
		}
		if err != nil {
			return fmt.Errorf("set up stdin: %w", err)
		}
	}
	if spec.Stdout != nil {
		p, err := s.output(spec.Stdout)
		if err == nil {
			err = setStdout(p)
		}
		if err != nil {
			return fmt.Errorf("set up stdout: %w", err)
		}
	}
	p, err := s.output(multiWriter(writerOr(spec.Stderr), stderrOOM))
	if err == nil {
		err = setStderr(p)
	}
	if err != nil {
		return fmt.Errorf("set up stderr: %w", err)
	}
	return nil
}
