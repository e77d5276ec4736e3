package containerdtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is what /proc says about one process.
type proc struct {
	pid, ppid int
	rss, pss  int64 // bytes
	threads   int
}

// readProc reads /proc/<pid>/stat and status (and smaps_rollup when withPss).
func readProc(pid int, withPss bool) (proc, error) {
	p := proc{pid: pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return p, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): ppid is field 4.
	if len(f) < 13 {
		return p, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	p.ppid, _ = strconv.Atoi(f[1])
	if b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err != nil {
		return p, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			p.rss = kb << 10
		case "Threads:":
			p.threads, _ = strconv.Atoi(f[1])
		}
	}
	if withPss {
		if b, err = os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
					kb, _ := strconv.ParseInt(f[1], 10, 64)
					p.pss = kb << 10
				}
			}
		}
	}
	return p, nil
}

// allPids lists the processes of the machine.
func allPids() []int {
	es, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range es {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// tree is this containerd's processes: the daemon, its shims (found by
// binary and by the -address they serve) and the shims' descendants (the
// pods' pause and workload processes; runc while it works).
type tree struct {
	containerd int
	shims      []int
	containers []int
}

func (c *Containerd) processes() tree {
	t := tree{}
	if c.cmd != nil && c.cmd.Process != nil {
		t.containerd = c.cmd.Process.Pid
	}
	children := map[int][]int{}
	for _, pid := range allPids() {
		p, err := readProc(pid, false)
		if err != nil {
			continue
		}
		children[p.ppid] = append(children[p.ppid], pid)
		if c.isShim(pid) {
			t.shims = append(t.shims, pid)
		}
	}
	// Descendants of the shims, breadth first.
	queue := slices.Clone(t.shims)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, ch := range children[pid] {
			if !slices.Contains(t.shims, ch) {
				t.containers = append(t.containers, ch)
				queue = append(queue, ch)
			}
		}
	}
	return t
}

// isShim says whether pid is a shim of this containerd.
func (c *Containerd) isShim(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || (exe != c.shimPath && !slices.Contains(c.extraShims, exe)) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	for i, a := range args {
		if a == "-address" && i+1 < len(args) && args[i+1] == c.Socket {
			return true
		}
	}
	return false
}

// killLeftovers SIGKILLs the shims of this containerd and their
// descendants (there should be none once the pods are removed) and returns
// how many there were.
func (c *Containerd) killLeftovers() int {
	if c.shimPath == "" {
		return 0
	}
	t := c.processes()
	t.containerd = 0
	pids := append(t.containers, t.shims...)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// Let them go (the shims are reparented, someone else reaps them).
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil && !zombie(pid) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return len(pids)
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// unmountUnder detaches every mount at or below dir (deepest first) and
// returns how many there were.
func unmountUnder(dir string) (int, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0, err
	}
	var points []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	// Deeper first; a path mounted twice is unmounted twice.
	slices.SortFunc(points, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var errs []string
	for _, mp := range points {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			errs = append(errs, fmt.Sprintf("%s: %v", mp, err))
		}
	}
	if len(errs) > 0 {
		return len(points), fmt.Errorf("unmount leftovers: %s", strings.Join(errs, "; "))
	}
	return len(points), nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, …).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroups removes the cgroup parent (a cgroupfs path such as
// /ctd-123) and everything below it from every hierarchy under
// /sys/fs/cgroup, deepest first. Best effort: a cgroup still holding a
// process stays.
func removeCgroups(parent string) {
	if parent == "" || parent == "/" {
		return
	}
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots := append(hier, "/sys/fs/cgroup")
	for _, h := range roots {
		top := filepath.Join(h, parent)
		if fi, err := os.Stat(top); err != nil || !fi.IsDir() {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			_ = syscall.Rmdir(d)
		}
	}
}
