package oci

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ProgressState is the stage of one blob transfer.
type ProgressState int

const (
	// ProgressStarted: the transfer of the blob begins.
	ProgressStarted ProgressState = iota
	// ProgressRunning: Done bytes of Descriptor.Size have moved.
	ProgressRunning
	// ProgressDone: the blob moved completely (and was verified on pull).
	ProgressDone
	// ProgressSkipped: the blob was already there (in the store on pull, in
	// the registry on push); nothing moved.
	ProgressSkipped
)

// Progress reports a blob moving between registry and store. Reports for one
// blob arrive in order; reports of different blobs never interleave within
// one Pull or Push call.
type Progress struct {
	// Descriptor is the blob (media type, digest, size).
	Descriptor ocispec.Descriptor
	// State is the stage of the transfer.
	State ProgressState
	// Done counts the bytes moved so far.
	Done int64
}

// progressReader reports reads of a blob.
type progressReader struct {
	r    io.Reader
	desc ocispec.Descriptor
	fn   func(Progress)
	done int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		p.fn(Progress{Descriptor: p.desc, State: ProgressRunning, Done: p.done})
	}
	return n, err
}

// trackProgress wraps r so that fn sees the transfer; a nil fn costs nothing.
func trackProgress(r io.Reader, desc ocispec.Descriptor, fn func(Progress)) io.Reader {
	if fn == nil {
		return r
	}
	fn(Progress{Descriptor: desc, State: ProgressStarted})
	return &progressReader{r: r, desc: desc, fn: fn}
}

func report(fn func(Progress), desc ocispec.Descriptor, state ProgressState) {
	if fn != nil {
		fn(Progress{Descriptor: desc, State: state, Done: desc.Size})
	}
}

// ProgressPrinter renders [Progress] reports for a command line: on a
// terminal one bar per blob redrawn in place, otherwise one plain line when a
// blob starts and one when it ends (logs stay readable). Its Report method is
// the PullOptions/PushOptions Progress callback; it is safe for concurrent
// use.
type ProgressPrinter struct {
	w    io.Writer
	tty  bool
	verb string

	mu   sync.Mutex
	last time.Time
}

// NewProgressPrinter returns a printer writing to w; tty selects bars; verb
// ("pull", "push") starts each line.
func NewProgressPrinter(w io.Writer, tty bool, verb string) *ProgressPrinter {
	return &ProgressPrinter{w: w, tty: tty, verb: verb}
}

// Report renders one progress report.
func (p *ProgressPrinter) Report(ev Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := ev.Descriptor
	name := fmt.Sprintf("%s %s", shortDigest(d.Digest.String()), d.MediaType)
	if !p.tty {
		switch ev.State {
		case ProgressStarted:
			fmt.Fprintf(p.w, "%s %s: started (%s)\n", p.verb, name, humanBytes(d.Size))
		case ProgressDone:
			fmt.Fprintf(p.w, "%s %s: done (%s)\n", p.verb, name, humanBytes(d.Size))
		case ProgressSkipped:
			fmt.Fprintf(p.w, "%s %s: exists, skipped (%s)\n", p.verb, name, humanBytes(d.Size))
		}
		return
	}
	now := time.Now()
	if ev.State == ProgressRunning && now.Sub(p.last) < 100*time.Millisecond && ev.Done < d.Size {
		return
	}
	p.last = now
	switch ev.State {
	case ProgressSkipped:
		fmt.Fprintf(p.w, "\r\x1b[K%s %s: exists (%s)\n", p.verb, name, humanBytes(d.Size))
	case ProgressDone:
		fmt.Fprintf(p.w, "\r\x1b[K%s %s %s %s\n", p.verb, name, bar(d.Size, d.Size), humanBytes(d.Size))
	default:
		fmt.Fprintf(p.w, "\r\x1b[K%s %s %s %s/%s", p.verb, name, bar(ev.Done, d.Size), humanBytes(ev.Done), humanBytes(d.Size))
	}
}

func bar(done, total int64) string {
	const width = 30
	n := width
	if total > 0 {
		n = int(min(done, total) * width / total)
	}
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}

func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return hex[:12]
	}
	return d
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
