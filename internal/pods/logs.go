package pods

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

// maxLogLine is the longest content a single CRI log record carries; longer
// lines are split into partial (P) records, as containerd does.
const maxLogLine = 16 * 1024

// logFile writes one container run's stdout and stderr into a file in the CRI
// log format: `<RFC3339Nano> stdout|stderr F|P <content>\n`. Both streams share
// the file; a mutex keeps records whole.
//
// Like the kubelet (containerLogMaxSize 10Mi, containerLogMaxFiles 5), a
// file that grows past maxSize is rotated: renamed to <path>.<timestamp>,
// the oldest rotated files beyond maxFiles-1 removed, and a new file
// started at path. Served logs come from the current file.
type logFile struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	size     int64
	maxSize  int64
	maxFiles int
	now      func() time.Time
	bufs     [2][]byte
	closed   bool
	err      error
}

// Kubelet defaults for container log rotation.
const (
	defaultLogMaxSize  = 10 << 20
	defaultLogMaxFiles = 5
)

func createLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open container log %s: %w", path, err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return &logFile{path: path, f: f, size: size, maxSize: defaultLogMaxSize, maxFiles: defaultLogMaxFiles, now: time.Now}, nil
}

// rotate starts a new file at l.path; l.mu must be held.
func (l *logFile) rotate() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	rotated := l.path + "." + l.now().UTC().Format("20060102-150405.000000000")
	if err := os.Rename(l.path, rotated); err != nil {
		return err
	}
	if old, _ := filepath.Glob(l.path + ".*"); len(old) > l.maxFiles-1 {
		sort.Strings(old) // timestamps sort by time
		for _, o := range old[:len(old)-(l.maxFiles-1)] {
			os.Remove(o)
		}
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	l.f, l.size = f, 0
	return nil
}

var streamNames = [2]string{"stdout", "stderr"}

// Stream returns the writer for stream 0 (stdout) or 1 (stderr).
func (l *logFile) Stream(i int) io.Writer { return &logStream{l: l, i: i} }

type logStream struct {
	l *logFile
	i int
}

func (s *logStream) Write(p []byte) (int, error) { return s.l.write(s.i, p) }

func (l *logFile) write(i int, p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, os.ErrClosed
	}
	if l.err != nil {
		return 0, l.err
	}
	// Only an unterminated line left by an earlier write is buffered; a
	// write of whole lines is split straight from p.
	buf := p
	if len(l.bufs[i]) > 0 {
		buf = append(l.bufs[i], p...)
	}
	var out bytes.Buffer
	for {
		nl := bytes.IndexByte(buf, '\n')
		if nl >= 0 && nl <= maxLogLine {
			l.record(&out, i, "F", buf[:nl])
			buf = buf[nl+1:]
			continue
		}
		if len(buf) > maxLogLine {
			l.record(&out, i, "P", buf[:maxLogLine])
			buf = buf[maxLogLine:]
			continue
		}
		break
	}
	l.bufs[i] = append(l.bufs[i][:0], buf...)
	if out.Len() > 0 {
		// Rotate before writing, so the current file always holds the
		// latest lines.
		if l.maxSize > 0 && l.size > 0 && l.size+int64(out.Len()) > l.maxSize {
			if err := l.rotate(); err != nil {
				l.err = fmt.Errorf("rotate container log %s: %w", l.path, err)
				return 0, l.err
			}
		}
		n, err := l.f.Write(out.Bytes())
		l.size += int64(n)
		if err != nil {
			l.err = err
			return 0, err
		}
	}
	return len(p), nil
}

func (l *logFile) record(out *bytes.Buffer, i int, tag string, content []byte) {
	out.WriteString(l.now().UTC().Format(time.RFC3339Nano))
	out.WriteByte(' ')
	out.WriteString(streamNames[i])
	out.WriteByte(' ')
	out.WriteString(tag)
	out.WriteByte(' ')
	out.Write(content)
	out.WriteByte('\n')
}

// Close flushes an unterminated last line of each stream as a full (F) record.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var out bytes.Buffer
	for i := range l.bufs {
		if len(l.bufs[i]) > 0 {
			l.record(&out, i, "F", l.bufs[i])
			l.bufs[i] = nil
		}
	}
	_, werr := l.f.Write(out.Bytes())
	cerr := l.f.Close()
	return errors.Join(werr, cerr)
}

// logRecord is one parsed CRI log line.
type logRecord struct {
	Time    time.Time
	TimeRaw string
	Stream  string
	Partial bool
	Content []byte
}

// parseLogRecord parses `<ts> <stream> <tag> <content>`. Lines written by
// older runtimes without a tag are accepted as full records.
func parseLogRecord(line []byte) (logRecord, error) {
	var r logRecord
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return r, fmt.Errorf("log line without timestamp: %q", truncate(string(line), 80))
	}
	r.TimeRaw = string(line[:sp])
	t, err := time.Parse(time.RFC3339Nano, r.TimeRaw)
	if err != nil {
		return r, fmt.Errorf("log line timestamp %q: %w", r.TimeRaw, err)
	}
	r.Time = t
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp < 0 {
		return r, fmt.Errorf("log line without stream: %q", truncate(string(line), 80))
	}
	r.Stream = string(line[:sp])
	line = line[sp+1:]
	if len(line) >= 2 && (line[0] == 'F' || line[0] == 'P') && line[1] == ' ' {
		r.Partial = line[0] == 'P'
		line = line[2:]
	} else if len(line) == 1 && (line[0] == 'F' || line[0] == 'P') {
		r.Partial = line[0] == 'P'
		line = nil
	}
	r.Content = line
	return r, nil
}

// logEntry is one logical line: partial records joined with their final one.
type logEntry struct {
	Time    time.Time
	TimeRaw string
	Stream  string
	Content []byte
}

// logParser joins the partial records of a CRI log across reads of a
// growing file: a run of partial records whose final record has not been
// written yet stays pending in the parser, not in the file offset, so the
// next read starts after the last complete line and nothing is served twice
// or lost.
type logParser struct {
	pending map[string]*logEntry
}

// feed parses the complete lines of data (malformed ones are skipped) and
// returns the logical lines they finish and the bytes consumed: up to the
// end of the last complete line. An incomplete record at the end is left
// for the next call (the writer is mid-write).
func (p *logParser) feed(data []byte) (entries []logEntry, consumed int) {
	if p.pending == nil {
		p.pending = map[string]*logEntry{}
	}
	for consumed < len(data) {
		nl := bytes.IndexByte(data[consumed:], '\n')
		if nl < 0 {
			break
		}
		line := data[consumed : consumed+nl]
		consumed += nl + 1
		rec, err := parseLogRecord(line)
		if err != nil {
			continue
		}
		e := p.pending[rec.Stream]
		if e == nil {
			e = &logEntry{Time: rec.Time, TimeRaw: rec.TimeRaw, Stream: rec.Stream}
		}
		e.Content = append(e.Content, rec.Content...)
		if rec.Partial {
			p.pending[rec.Stream] = e
			continue
		}
		delete(p.pending, rec.Stream)
		entries = append(entries, *e)
	}
	return entries, consumed
}

// readLogEntries parses a whole CRI log file into logical lines (see
// logParser.feed); a followed file is read with one logParser instead.
func readLogEntries(data []byte) (entries []logEntry, consumed int) {
	var p logParser
	return p.feed(data)
}

// formatEntry renders a logical line the way the kubelet serves it.
func formatEntry(w *bytes.Buffer, e logEntry, timestamps bool) {
	if timestamps {
		w.WriteString(e.TimeRaw)
		w.WriteByte(' ')
	}
	w.Write(e.Content)
	w.WriteByte('\n')
}

// logReader serves one container log file with the kubelet's options.
type logReader struct {
	path    string
	opts    api.ContainerLogOpts
	running func() bool // whether the container writing path still runs
	poll    time.Duration
}

// stream writes the selected log lines to w; with Follow it keeps reading
// until the container stops writing the file or ctx ends.
func (r *logReader) stream(ctx context.Context, w io.Writer) error {
	data, err := os.ReadFile(r.path)
	if err != nil {
		return fmt.Errorf("read log %s: %w", r.path, err)
	}
	var parser logParser
	entries, consumed := parser.feed(data)
	since := r.opts.SinceTime
	if r.opts.SinceSeconds > 0 {
		since = time.Now().Add(-time.Duration(r.opts.SinceSeconds) * time.Second)
	}
	if !since.IsZero() {
		i := 0
		for i < len(entries) && entries[i].Time.Before(since) {
			i++
		}
		entries = entries[i:]
	}
	if r.opts.Tail > 0 && len(entries) > r.opts.Tail {
		entries = entries[len(entries)-r.opts.Tail:]
	}
	lw := newLimitWriter(w, r.opts.LimitBytes)
	var buf bytes.Buffer
	for _, e := range entries {
		formatEntry(&buf, e, r.opts.Timestamps)
	}
	if _, err := lw.Write(buf.Bytes()); err != nil {
		return ignoreLimit(err)
	}
	if !r.opts.Follow {
		return nil
	}
	f, err := os.Open(r.path)
	if err != nil {
		return fmt.Errorf("follow log %s: %w", r.path, err)
	}
	defer func() { f.Close() }()
	if _, err := f.Seek(int64(consumed), io.SeekStart); err != nil {
		return fmt.Errorf("follow log %s: %w", r.path, err)
	}
	poll := r.poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	br := bufio.NewReaderSize(f, 64*1024)
	var rest []byte
	for {
		stopped := r.running == nil || !r.running()
		chunk, rerr := io.ReadAll(br)
		if rerr != nil {
			return fmt.Errorf("follow log %s: %w", r.path, rerr)
		}
		rest = append(rest, chunk...)
		entries, n := parser.feed(rest)
		rest = rest[n:]
		buf.Reset()
		for _, e := range entries {
			if !since.IsZero() && e.Time.Before(since) {
				continue
			}
			formatEntry(&buf, e, r.opts.Timestamps)
		}
		if buf.Len() > 0 {
			if _, err := lw.Write(buf.Bytes()); err != nil {
				return ignoreLimit(err)
			}
			if fl, ok := w.(interface{ Flush() }); ok {
				fl.Flush()
			}
		}
		if len(chunk) == 0 && rotatedAway(f, r.path) {
			// The writer rotated the file: finish the old one (written
			// completely before the rename), then continue with the new.
			if nf, err := os.Open(r.path); err == nil {
				tail, _ := io.ReadAll(br)
				if ents, _ := parser.feed(append(rest, tail...)); len(ents) > 0 {
					buf.Reset()
					for _, e := range ents {
						if since.IsZero() || !e.Time.Before(since) {
							formatEntry(&buf, e, r.opts.Timestamps)
						}
					}
					if _, err := lw.Write(buf.Bytes()); err != nil {
						nf.Close()
						return ignoreLimit(err)
					}
				}
				f.Close()
				f = nf
				br.Reset(f)
				rest = rest[:0]
				continue
			}
		}
		if stopped && len(chunk) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// rotatedAway reports whether path now names another file than f.
func rotatedAway(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && !os.SameFile(a, b)
}

var errLimitReached = errors.New("log byte limit reached")

func ignoreLimit(err error) error {
	if errors.Is(err, errLimitReached) {
		return nil
	}
	return err
}

// limitWriter stops after limit bytes (limit <= 0: no limit).
type limitWriter struct {
	w     io.Writer
	limit bool
	left  int
}

func newLimitWriter(w io.Writer, n int) *limitWriter {
	return &limitWriter{w: w, limit: n > 0, left: n}
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if !l.limit {
		return l.w.Write(p)
	}
	if l.left <= 0 {
		return 0, errLimitReached
	}
	if len(p) > l.left {
		n, err := l.w.Write(p[:l.left])
		l.left -= n
		if err != nil {
			return n, err
		}
		return n, errLimitReached
	}
	n, err := l.w.Write(p)
	l.left -= n
	return n, err
}

// tailForTermination returns the last lines of a log file for
// terminationMessagePolicy FallbackToLogsOnError: at most 80 lines and 2048
// bytes, as the kubelet does.
func tailForTermination(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	entries, _ := readLogEntries(data)
	if len(entries) > 80 {
		entries = entries[len(entries)-80:]
	}
	var b strings.Builder
	for _, e := range entries {
		b.Write(e.Content)
		b.WriteByte('\n')
	}
	s := b.String()
	if len(s) > 2048 {
		s = s[len(s)-2048:]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
