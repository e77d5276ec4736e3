package pods

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

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

// filesCheckInterval is how often the node counts its open files.
const filesCheckInterval = 200 * time.Millisecond

// errTooManyFiles is the cause a container is stopped with.
var errTooManyFiles = errors.New("too many open files")

// watchFiles runs the open-file watchdog until the provider closes.
func (p *Provider) watchFiles() {
	t := time.NewTicker(filesCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-p.baseCtx.Done():
			return
		case <-t.C:
		}
		p.checkFiles()
	}
}

// checkFiles counts the process's open files (a directory read); only when
// they exceed the per-container limit does it resolve them to containers.
func (p *Provider) checkFiles() {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil || len(fds) <= p.cfg.MaxOpenFiles {
		return
	}
	type holder struct {
		w      *podWorker
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
				holders = append(holders, &holder{w: w, name: name, mounts: r.mounts})
			}
		}
		w.mu.Unlock()
	}
	p.mu.Unlock()
	if len(holders) == 0 {
		return
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil || !strings.HasPrefix(target, "/") {
			continue // gone meanwhile, or a socket, pipe, anon inode
		}
		for _, h := range holders {
			if under(target, h.mounts) {
				h.count++
				break
			}
		}
	}
	for _, h := range holders {
		if h.count > p.cfg.MaxOpenFiles {
			h.w.stopForFiles(h.name, h.count, p.cfg.MaxOpenFiles)
		}
	}
}

// under says whether path lies in one of dirs.
func under(path string, dirs []string) bool {
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
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
