package runtime

import (
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

// tailBuffer is an io.Writer remembering the last bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

func writerOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// teeTail writes to w and remembers the tail; a failing w does not stop the
// tail from being kept.
type teeTail struct {
	w    io.Writer
	tail *tailBuffer
}

func multiWriter(w io.Writer, tail *tailBuffer) io.Writer { return teeTail{w, tail} }

func (t teeTail) Write(p []byte) (int, error) {
	t.tail.Write(p)
	return t.w.Write(p)
}

// configure creates the pipes for spec's streams and hands their paths to
// the setters. Stderr is always captured (its tail feeds out-of-memory
// detection); stdout only when spec.Stdout is set; stdin when spec.Stdin is.
func (s *stdio) configure(spec Spec, stderrTail *tailBuffer, setStdin, setStdout, setStderr func(string) error) error {
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
	p, err := s.output(multiWriter(writerOr(spec.Stderr), stderrTail))
	if err == nil {
		err = setStderr(p)
	}
	if err != nil {
		return fmt.Errorf("set up stderr: %w", err)
	}
	return nil
}
