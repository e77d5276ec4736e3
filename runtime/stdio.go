package runtime

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// wasmtime-go's WASI configuration takes file paths for the standard
// streams, while Spec carries io.Reader/io.Writer. Each stream is therefore a
// pipe whose guest end wasmtime opens by its /proc/self/fd path (wasmtime
// opens it immediately, so our copy of that end is closed at once) and whose
// host end a goroutine copies. When the store is deleted wasmtime closes its
// ends, the output copiers see EOF, and wait returns once every byte has
// been written to the Spec's writers.

type stdio struct {
	copiers sync.WaitGroup
	// stdinW is the host end of the stdin pipe (nil without Stdin).
	stdinW    *os.File
	closeOnce sync.Once
}

// procFD names an open descriptor of this process as a path.
func procFD(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// outputPipe returns the path wasmtime should open for an output stream and
// starts the copier to w.
func (s *stdio) outputPipe(w io.Writer, set func(path string) error) error {
	r, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	err = set(procFD(pw))
	pw.Close()
	if err != nil {
		r.Close()
		return err
	}
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
	return nil
}

// inputPipe feeds rd to the guest's stdin.
func (s *stdio) inputPipe(rd io.Reader, set func(path string) error) error {
	pr, w, err := os.Pipe()
	if err != nil {
		return err
	}
	err = set(procFD(pr))
	pr.Close()
	if err != nil {
		w.Close()
		return err
	}
	s.stdinW = w
	go func() {
		// Not waited for: rd may block forever (a terminal). Closing w in
		// closeStdin makes a pending write fail and ends this goroutine as
		// soon as rd returns.
		_, _ = io.Copy(w, rd)
		s.closeStdin()
	}()
	return nil
}

// closeStdin gives the guest EOF on stdin (idempotent).
func (s *stdio) closeStdin() {
	if s.stdinW != nil {
		s.closeOnce.Do(func() { s.stdinW.Close() })
	}
}

// wait returns when stdout and stderr are fully copied; the store (which
// holds wasmtime's ends of the pipes) must be deleted first.
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
