package pods

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/wasilet/wasilet/internal/devicemanager"
	"github.com/wasilet/wasilet/runtime"
)

// mountSet builds the preopened directories of one container run.
type mountSet struct {
	runDir string // <pod>/containers/<name>: private scratch of this container
	mounts []runtime.Mount
	seq    int
}

func (m *mountSet) has(guest string) bool {
	for _, x := range m.mounts {
		if x.GuestPath == guest {
			return true
		}
	}
	return false
}

// add preopens host at guest. WASI preopens are directories: a file (or
// socket) is reached by preopening its directory at the parent of guest when
// the names match; otherwise a copy is placed in a private directory
// (read-only in effect: the guest's writes do not reach the original).
func (m *mountSet) add(host, guest string, readOnly bool) error {
	if !path.IsAbs(guest) {
		return fmt.Errorf("mountPath %q is not absolute", guest)
	}
	guest = path.Clean(guest)
	fi, err := os.Stat(host)
	if err != nil {
		return fmt.Errorf("mount %s: %w", guest, err)
	}
	if fi.IsDir() {
		m.mounts = append(m.mounts, runtime.Mount{HostPath: host, GuestPath: guest, ReadOnly: readOnly})
		return nil
	}
	if guest == "/" {
		return fmt.Errorf("cannot mount file %s at /", host)
	}
	if filepath.Base(host) == path.Base(guest) {
		m.mounts = append(m.mounts, runtime.Mount{HostPath: filepath.Dir(host), GuestPath: path.Dir(guest), ReadOnly: readOnly})
		return nil
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("mount %s: %s is not a directory or regular file and its name differs from the mount path's", guest, host)
	}
	m.seq++
	dir := filepath.Join(m.runDir, "files", strconv.Itoa(m.seq))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := copyFile(host, filepath.Join(dir, path.Base(guest)), fi.Mode().Perm()); err != nil {
		return fmt.Errorf("mount %s: %w", guest, err)
	}
	m.mounts = append(m.mounts, runtime.Mount{HostPath: dir, GuestPath: path.Dir(guest), ReadOnly: readOnly})
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	return writeFileAtomic(dst, data, mode)
}

// containerMounts turns c's volumeMounts (and device allocations) into
// preopens, and adds the writable directory holding its termination log.
// It returns the host path of the termination log.
func containerMounts(c *corev1.Container, vols map[string]volume, env map[string]string, runDir string, alloc *devicemanager.ContainerAllocation) ([]runtime.Mount, string, error) {
	ms := &mountSet{runDir: runDir}
	if err := os.RemoveAll(filepath.Join(runDir, "files")); err != nil {
		return nil, "", err
	}
	for _, vm := range c.VolumeMounts {
		vol, ok := vols[vm.Name]
		if !ok {
			return nil, "", configErrorf("volumeMount %q names no volume of the pod", vm.Name)
		}
		host := vol.Path
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expand(vm.SubPathExpr, env)
		}
		if sub != "" {
			rel, err := safeRelPath(sub)
			if err != nil {
				return nil, "", configErrorf("volumeMount %q subPath: %v", vm.Name, err)
			}
			host = filepath.Join(host, rel)
			if _, err := os.Lstat(host); os.IsNotExist(err) {
				// The kubelet creates a missing subPath as a directory.
				if err := os.MkdirAll(host, 0o777); err != nil {
					return nil, "", fmt.Errorf("create subPath %s: %w", host, err)
				}
			}
			if err := insideDir(vol.Path, host); err != nil {
				return nil, "", configErrorf("volumeMount %q subPath: %v", vm.Name, err)
			}
		}
		if err := ms.add(host, vm.MountPath, vm.ReadOnly || vol.ReadOnly); err != nil {
			return nil, "", configErrorf("volumeMount %q: %v", vm.Name, err)
		}
	}
	if alloc != nil {
		for _, dm := range alloc.Mounts {
			if err := ms.add(dm.HostPath, dm.ContainerPath, dm.ReadOnly); err != nil {
				return nil, "", fmt.Errorf("device mount: %w", err)
			}
		}
		for _, d := range alloc.Devices {
			ro := d.Permissions != "" && !strings.Contains(d.Permissions, "w")
			if err := ms.add(d.HostPath, d.ContainerPath, ro); err != nil {
				return nil, "", fmt.Errorf("device %s: %w", d.ContainerPath, err)
			}
		}
	}
	tmp := c.TerminationMessagePath
	if tmp == "" {
		tmp = corev1.TerminationMessagePathDefault
	}
	var termPath string
	if path.IsAbs(tmp) && path.Clean(tmp) != "/" {
		guestDir := path.Dir(path.Clean(tmp))
		if !ms.has(guestDir) {
			dir := filepath.Join(runDir, "termination")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, "", err
			}
			termPath = filepath.Join(dir, path.Base(tmp))
			if err := os.WriteFile(termPath, nil, 0o666); err != nil {
				return nil, "", fmt.Errorf("create termination log: %w", err)
			}
			ms.mounts = append(ms.mounts, runtime.Mount{HostPath: dir, GuestPath: guestDir})
		}
	}
	return ms.mounts, termPath, nil
}

// insideDir checks, after resolving symlinks, that p stays inside base.
func insideDir(base, p string) error {
	rb, err := filepath.EvalSymlinks(base)
	if err != nil {
		return err
	}
	rp, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(rb, rp)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s leaves its volume", p)
	}
	return nil
}
