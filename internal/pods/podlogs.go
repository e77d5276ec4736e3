package pods

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

// GetContainerLogs serves a container's log like the kubelet: tailLines,
// limitBytes, timestamps, sinceSeconds/sinceTime, previous (the run before
// the current one) and follow (until the run ends or ctx is cancelled).
func (p *Provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	w, err := p.lookup(namespace, podName)
	live := err == nil
	if err != nil {
		// A pod that ended before the node restarted is not handed back
		// by virtual-kubelet; its logs are still on disk.
		if w = p.savedPod(namespace, podName); w == nil {
			return nil, err
		}
	}
	w.mu.Lock()
	var cr *containerRecord
	for _, c := range w.rec.Containers {
		if c.Name == containerName {
			cr = c
		}
	}
	if cr == nil {
		w.mu.Unlock()
		return nil, errdefs.NotFoundf("container %q in pod %q is not available", containerName, podName)
	}
	path := cr.LogPath
	restarts := cr.RestartCount
	waiting := cr.Phase == phaseWaiting && cr.LogPath == ""
	reason := cr.Reason
	w.mu.Unlock()

	if opts.Previous {
		if restarts < 1 {
			return nil, errdefs.InvalidInputf("previous terminated container %q in pod %q not found", containerName, podName)
		}
		path = filepath.Join(w.dir, containerName, fmt.Sprintf("%d.log", restarts-1))
		if _, err := os.Stat(path); err != nil {
			return nil, errdefs.InvalidInputf("previous terminated container %q in pod %q not found", containerName, podName)
		}
		opts.Follow = false
	} else if waiting || path == "" {
		return nil, errdefs.InvalidInputf("container %q in pod %q is waiting to start: %s", containerName, podName, reasonOr(reason, "ContainerCreating"))
	}
	r := &logReader{path: path, opts: opts, running: func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return live && cr.Phase == phaseRunning && cr.LogPath == path
	}}
	if !opts.Follow {
		var buf bytes.Buffer
		if err := r.stream(ctx, &buf); err != nil {
			return nil, err
		}
		return io.NopCloser(&buf), nil
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(r.stream(ctx, pw))
	}()
	return pr, nil
}

func reasonOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// savedPod finds the saved state of a pod this process does not run, as a
// worker that is never started (read-only use).
func (p *Provider) savedPod(namespace, name string) *podWorker {
	root := filepath.Join(p.cfg.DataDir, "pods")
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var best *podWorker
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		rec, err := loadPodRecord(statePath(dir))
		if err != nil || rec.Namespace != namespace || rec.Name != name {
			continue
		}
		if best == nil || rec.StartTime.After(best.rec.StartTime) {
			best = &podWorker{p: p, dir: dir, rec: rec, namespace: namespace, name: name}
		}
	}
	return best
}
