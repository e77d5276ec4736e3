package pods

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// Guests run inside the node process, and every file a guest opens through
// WASI is an open file of the node: a guest opening files without end would
// leave the node none (no logs, no API connections, no sockets). wasmtime has
// no per-guest limit, so the node watches: it counts its open files and,
// once they pass a threshold, finds whose mounts they lie in and stops any
// container holding more than Config.MaxOpenFiles.

// DefaultMaxOpenFiles is the per-container limit when Config.MaxOpenFiles
// is 0 (a container runtime's usual soft RLIMIT_NOFILE).
const DefaultMaxOpenFiles = 1024

// filesCheckInterval is how often the node counts its open files, and
// filesFullScan how often (in checks) it resolves every one of them: the
// checks between resolve only descriptors with numbers not seen before.
const (
	filesCheckInterval = 200 * time.Millisecond
	filesFullScan      = 25
)

// errTooManyFiles is the cause a container is stopped with.
var errTooManyFiles = errors.New("too many open files")

// watchFiles runs the open-file watchdog until the provider closes.
func (p *Provider) watchFiles() {
	t := time.NewTicker(filesCheckInterval)
	defer t.Stop()
	var fw fileWatch
	defer fw.close()
	for {
		select {
		case <-p.baseCtx.Done():
			return
		case <-t.C:
		}
		p.checkFiles(&fw)
	}
}

// fileWatch is the watchdog's state between checks. With hundreds of pods
// the node holds thousands of descriptors, all past the threshold, so a
// check must be cheap: one open /proc/self/fd read as raw directory entries
// (no sorting, no per-entry allocation), readlinkat into one buffer, and the
// targets of known descriptor numbers taken from the last check, except
// every filesFullScan-th check, which checks all (a closed number reused
// for another file is thus counted right within five seconds): a number
// still open on the same file (device and inode, by fstat) keeps its
// holder, any other is resolved again.
type fileWatch struct {
	dir    *os.File
	dirent []byte
	link   []byte
	known  map[int]fdEntry // descriptor → what the last check found
	keys   []string        // the holders the indices in known refer to (worker/container)
	checks int
	last   int // the descriptor count at the last check that resolved any
}

// fdEntry is a descriptor as the last check resolved it: the index of its
// holder in that check's list (-1: none) and the file's identity, which a
// full scan compares with one fstat instead of resolving the path again
// (a readlink through /proc is a path walk and the watchdog's main cost
// with a thousand pods).
type fdEntry struct {
	holder   int
	dev, ino uint64
}

func (fw *fileWatch) close() {
	if fw.dir != nil {
		fw.dir.Close()
	}
}

func (fw *fileWatch) open() error {
	if fw.dir != nil {
		return nil
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return err
	}
	fw.dir, fw.dirent, fw.link = d, make([]byte, 32<<10), make([]byte, 4096)
	return nil
}

// count is the number of open descriptors as stat reports it for
// /proc/self/fd (Linux 6.2 and later, without reading the directory), or
// -1 where it reports none.
func (fw *fileWatch) count() int {
	if err := fw.open(); err != nil {
		return -1
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(fw.dir.Fd()), &st); err != nil || st.Size <= 0 {
		return -1
	}
	return int(st.Size) - 1 // less the watch's own descriptor
}

// fds lists the process's open descriptor numbers.
func (fw *fileWatch) fds() ([]int, error) {
	if err := fw.open(); err != nil {
		return nil, err
	}
	if _, err := fw.dir.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var out []int
	for {
		n, err := syscall.ReadDirent(int(fw.dir.Fd()), fw.dirent)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return out, nil
		}
		for buf := fw.dirent[:n]; len(buf) > 0; {
			// struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name.
			if len(buf) < 19 {
				break
			}
			reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
			if reclen < 19 || reclen > len(buf) {
				break
			}
			if fd, ok := atoi(buf[19:reclen]); ok && fd != int(fw.dir.Fd()) {
				out = append(out, fd)
			}
			buf = buf[reclen:]
		}
	}
}

// target reads where descriptor fd points, into the shared buffer.
func (fw *fileWatch) target(fd int) ([]byte, bool) {
	var name [20]byte
	n, err := unix.Readlinkat(int(fw.dir.Fd()), string(strconv.AppendInt(name[:0], int64(fd), 10)), fw.link)
	if err != nil || n == 0 || n == len(fw.link) {
		return nil, false
	}
	return fw.link[:n], true
}

// atoi parses a NUL-terminated decimal descriptor name ("." and ".." fail).
func atoi(b []byte) (int, bool) {
	n, digits := 0, 0
	for _, c := range b {
		if c == 0 {
			break
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		n, digits = n*10+int(c-'0'), digits+1
	}
	return n, digits > 0
}

// checkFiles counts the process's open files; only when they exceed the
// per-container limit does it resolve them to containers.
func (p *Provider) checkFiles(fw *fileWatch) {
	fw.checks++
	full := fw.known == nil || fw.checks%filesFullScan == 0
	n := fw.count()
	if n >= 0 && n <= p.cfg.MaxOpenFiles {
		fw.known = nil
		return
	}
	if n >= 0 && n == fw.last && !full {
		// As many descriptors as at the last check: a guest gaining files
		// would show as growth unless others closed as many meanwhile, which
		// the next full scan (within five seconds) counts.
		return
	}
	fds, err := fw.fds()
	if err != nil || len(fds) <= p.cfg.MaxOpenFiles {
		fw.known = nil
		return
	}
	fw.last = n
	type holder struct {
		w      *podWorker
		key    string
		name   string
		mounts []string
		count  int
	}
	var holders []*holder
	p.mu.Lock()
	for _, w := range p.workers {
		w.mu.Lock()
		for name, r := range w.runs {
			if len(r.mounts) > 0 {
				holders = append(holders, &holder{w: w, key: string(w.uid) + "/" + name, name: name, mounts: r.mounts})
			}
		}
		w.mu.Unlock()
	}
	p.mu.Unlock()
	if len(holders) == 0 {
		fw.known = nil
		return
	}
	// A known descriptor's holder carries over when that holder is still
	// in the list.
	index := make(map[string]int, len(holders))
	for i, h := range holders {
		index[h.key] = i
	}
	dirs := map[string]int{} // mount directory → holder
	for i, h := range holders {
		for _, m := range h.mounts {
			if m = strings.TrimSuffix(m, "/"); m != "" {
				if _, taken := dirs[m]; !taken {
					dirs[m] = i
				}
			}
		}
	}
	known := make(map[int]fdEntry, len(fds))
	for _, fd := range fds {
		var st unix.Stat_t
		statted := false
		if old, ok := fw.known[fd]; ok {
			same := !full
			if full {
				statted = unix.Fstat(fd, &st) == nil
				same = statted && uint64(st.Dev) == old.dev && st.Ino == old.ino
			}
			if same {
				i := -1
				if old.holder >= 0 {
					var present bool
					if i, present = index[fw.keys[old.holder]]; !present {
						i = -1
					}
				}
				old.holder = i
				known[fd] = old
				if i >= 0 {
					holders[i].count++
				}
				continue
			}
		}
		if !statted && unix.Fstat(fd, &st) != nil {
			continue // closed meanwhile
		}
		e := fdEntry{holder: -1, dev: uint64(st.Dev), ino: st.Ino}
		known[fd] = e
		target, ok := fw.target(fd)
		if !ok || len(target) == 0 || target[0] != '/' {
			continue // gone meanwhile, or a socket, pipe, anon inode
		}
		if i, ok := holderOf(target, dirs); ok {
			holders[i].count++
			e.holder = i
			known[fd] = e
		}
	}
	fw.known = known
	fw.keys = fw.keys[:0]
	for _, h := range holders {
		fw.keys = append(fw.keys, h.key)
	}
	for _, h := range holders {
		if h.count > p.cfg.MaxOpenFiles {
			h.w.stopForFiles(h.name, h.count, p.cfg.MaxOpenFiles)
		}
	}
}

// holderOf finds the holder whose mount directory is the longest one path
// lies in (no allocation: map lookups by byte-slice conversion do not copy).
func holderOf(path []byte, dirs map[string]int) (int, bool) {
	if i, ok := dirs[string(path)]; ok {
		return i, true
	}
	for j := len(path) - 1; j > 0; j-- {
		if path[j] == '/' {
			if i, ok := dirs[string(path[:j])]; ok {
				return i, true
			}
		}
	}
	return 0, false
}

// stopForFiles stops a container holding too many files; its termination
// says why, and a Warning Event too.
func (w *podWorker) stopForFiles(container string, count, limit int) {
	w.mu.Lock()
	r, ok := w.runs[container]
	w.mu.Unlock()
	if !ok {
		return
	}
	r.cancel(fmt.Errorf("%w: %d open, more than the %d a container may hold on this node", errTooManyFiles, count, limit))
	w.event(container, false, corev1.EventTypeWarning, "TooManyOpenFiles",
		"Stopping container %s: it holds %d open files, more than the %d a container may hold on this node (--max-open-files-per-container)", container, count, limit)
}
