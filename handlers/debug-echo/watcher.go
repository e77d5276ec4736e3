package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wasilet/wasilet/handlers/debugecho"
	"github.com/wasilet/wasilet/proxy/exchange"
)

// rescanEvery bounds how long a new sub-directory can go unseen on a file
// system whose directory modification times are too coarse to tell two
// changes apart: the exchange directory is listed again at least this often.
const rescanEvery = 5 * time.Second

// watcher answers the requests in an exchange directory. It is driven by
// step and is not safe for concurrent use.
type watcher struct {
	dir            string
	stdout, stderr io.Writer

	started bool           // the availability file was checked once
	avail   exchange.Stamp // of the availability file, as last read
	online  bool

	dirStamp exchange.Stamp // of dir, as last listed
	listed   time.Time      // when dir was last listed
	subdirs  []string       // dir's sub-directories, as last listed

	requests map[string]*request // by directory
	problems map[string]string   // directory-wide problem last logged, by topic
}

// request is what the watcher knows of one request directory.
type request struct {
	in           exchange.Stamp // of the in.in last read
	descriptions []string
	valid        bool   // descriptions come from a valid in.in
	problem      string // in.in problem last logged

	out        exchange.Stamp // of out.out, as last read or written
	outContent []byte         // its content then (nil: missing or unreadable)
	outProblem string         // write problem last logged
}

func newWatcher(dir string, stdout, stderr io.Writer) *watcher {
	return &watcher{dir: dir, stdout: stdout, stderr: stderr, online: true,
		requests: map[string]*request{}, problems: map[string]string{}}
}

// step checks the exchange directory once: the availability file, then every
// request directory, writing each out.out whose content must change. When
// nothing changed it only stats files. Problems are logged once each, never
// returned: nothing a request holds stops the watcher.
func (w *watcher) step(now time.Time) {
	w.checkAvailability()
	dirs, err := w.requestDirs(now)
	if w.report("dir", err) {
		return
	}
	live := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		live[d.path] = true
		w.answer(d.path, d.in)
	}
	for path := range w.requests {
		if !live[path] {
			w.forget(path)
		}
	}
}

// checkAvailability rereads the availability file when it changed. A missing
// file means online; an unreadable one keeps the last state.
func (w *watcher) checkAvailability() {
	path := filepath.Join(w.dir, exchange.AvailabilityFile)
	st := exchange.StatFile(path)
	if w.started && st == w.avail {
		return
	}
	online := true
	if st.Exists {
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.report("availability", err)
			return
		}
		online = !exchange.Offline(b)
	}
	w.report("availability", nil)
	w.avail = st
	switch {
	case online == w.online && w.started:
	case !online:
		fmt.Fprintf(w.stdout, "%s holds %s: reporting no devices\n", path, exchange.OfflineText)
	case w.started:
		fmt.Fprintf(w.stdout, "%s no longer holds %s: reporting devices again\n", path, exchange.OfflineText)
	}
	w.online, w.started = online, true
}

type requestDir struct {
	path string
	in   exchange.Stamp // of its in.in
}

// requestDirs returns the same directories as exchange.RequestDirs, with the
// stamp of their in.in, but lists dir only when its stamp changed (an entry
// was added, removed or renamed) or rescanEvery passed.
func (w *watcher) requestDirs(now time.Time) ([]requestDir, error) {
	st := exchange.StatFile(w.dir)
	if !st.Exists {
		return nil, fmt.Errorf("exchange directory %s is missing or unreadable; waiting for it", w.dir)
	}
	if st != w.dirStamp || now.Sub(w.listed) >= rescanEvery || now.Before(w.listed) {
		entries, err := os.ReadDir(w.dir)
		if err != nil {
			return nil, err
		}
		w.subdirs = w.subdirs[:0]
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				w.subdirs = append(w.subdirs, filepath.Join(w.dir, e.Name()))
			}
		}
		w.dirStamp, w.listed = st, now
	}
	var dirs []requestDir
	for i, d := range append([]string{w.dir}, w.subdirs...) {
		in := exchange.StatFile(filepath.Join(d, exchange.InFile))
		if in.Exists {
			dirs = append(dirs, requestDir{path: d, in: in})
		} else if i > 0 && !exchange.StatFile(d).Exists {
			w.dirStamp = exchange.Stamp{} // a sub-directory vanished: list again next time
		}
	}
	return dirs, nil
}

// answer brings the out.out of the request directory dir, whose in.in has
// stamp in, up to date.
func (w *watcher) answer(dir string, in exchange.Stamp) {
	r := w.requests[dir]
	if r == nil {
		r = &request{}
		w.requests[dir] = r
	}
	inPath := filepath.Join(dir, exchange.InFile)
	if in != r.in {
		b, err := os.ReadFile(inPath)
		if errors.Is(err, fs.ErrNotExist) {
			return // removed since the stat; forgotten next step
		}
		if err != nil {
			r.logProblem(w, inPath, err.Error())
			return
		}
		r.in = in
		details, err := debugecho.ParseDetails(string(b))
		if err != nil {
			// Leave out.out as it is, and write none: an answer made
			// from an older in.in would be taken for this one's.
			r.descriptions, r.valid = nil, false
			r.logProblem(w, inPath, err.Error()+"; not answering it")
			return
		}
		descriptions, note := clean(details.Descriptions)
		if note != "" {
			fmt.Fprintf(w.stderr, "%s: %s\n", inPath, note)
		}
		r.descriptions, r.valid, r.problem = descriptions, true, ""
	}
	if !r.valid {
		return
	}
	want, err := exchange.MarshalOutput(output(debugecho.Devices(r.descriptions, w.online)))
	if err != nil { // clean makes this impossible
		r.logProblem(w, inPath, err.Error())
		return
	}

	outPath := filepath.Join(dir, exchange.OutFile)
	if st := exchange.StatFile(outPath); st != r.out || !st.Exists {
		r.out, r.outContent = st, nil
		if st.Exists {
			r.outContent, _ = os.ReadFile(outPath)
		}
	}
	if r.out.Exists && r.outContent != nil && bytes.Equal(r.outContent, want) {
		return
	}
	// in.in may have been replaced while we worked (a proxy giving this
	// directory a new request removes out.out, then writes in.in): answer
	// the new one next step rather than the old one now.
	if exchange.StatFile(inPath) != r.in {
		return
	}
	if err := exchange.WriteFileAtomic(outPath, want); err != nil {
		if errors.Is(err, fs.ErrNotExist) && !exchange.StatFile(dir).Exists {
			return // the directory went away; forgotten next step
		}
		if msg := oneLine(err.Error()); msg != r.outProblem {
			r.outProblem = msg
			fmt.Fprintf(w.stderr, "%s\n", msg)
		}
		return
	}
	r.out, r.outContent, r.outProblem = exchange.StatFile(outPath), want, ""
	fmt.Fprintf(w.stdout, "wrote %s: %s\n", outPath, describe(r.descriptions, w.online))
}

// forget drops a request directory whose in.in (or the directory) is gone.
func (w *watcher) forget(dir string) {
	delete(w.requests, dir)
	fmt.Fprintf(w.stdout, "%s: no request any more\n", dir)
}

// report logs err under topic unless it is the one logged last; nil clears
// the topic. It reports whether err is not nil.
func (w *watcher) report(topic string, err error) bool {
	if err == nil {
		delete(w.problems, topic)
		return false
	}
	if msg := oneLine(err.Error()); w.problems[topic] != msg {
		w.problems[topic] = msg
		fmt.Fprintf(w.stderr, "%s\n", msg)
	}
	return true
}

func (r *request) logProblem(w *watcher, path, msg string) {
	if msg = oneLine(msg); msg != r.problem {
		r.problem = msg
		fmt.Fprintf(w.stderr, "%s: %s\n", path, msg)
	}
}

// oneLine joins the lines of a multi-line message (YAML errors have them),
// so that each problem is one log line.
func oneLine(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " ")
}

// clean drops empty and repeated descriptions, which would make devices
// without an id or with the same id, and says what it dropped.
func clean(descriptions []string) ([]string, string) {
	out := make([]string, 0, len(descriptions))
	seen := map[string]bool{}
	var dropped []string
	for _, d := range descriptions {
		if d == "" || seen[d] {
			dropped = append(dropped, fmt.Sprintf("%q", d))
			continue
		}
		seen[d] = true
		out = append(out, d)
	}
	if dropped == nil {
		return out, ""
	}
	return out, "ignoring empty or repeated descriptions " + strings.Join(dropped, ", ")
}

func output(devs []debugecho.Device) exchange.Output {
	out := exchange.Output{Devices: make([]exchange.Device, 0, len(devs))}
	for _, d := range devs {
		out.Devices = append(out.Devices, exchange.Device{ID: d.ID, Properties: d.Properties})
	}
	return out
}

func describe(descriptions []string, online bool) string {
	switch {
	case !online:
		return "no devices (offline)"
	case len(descriptions) == 0:
		return "no devices"
	}
	return "devices " + strings.Join(descriptions, ", ")
}
