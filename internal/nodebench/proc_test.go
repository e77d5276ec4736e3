package nodebench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wasilet/wasilet/internal/nodetest"
)

// nodePID finds the process of n: a child of this test binary whose command
// line has `--data-dir <n.DataDir>`. (nodetest does not export the process.)
func nodePID(n *nodetest.Node) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("find the process of node %s: %w", n.Name, err)
	}
	want := []byte("\x00--data-dir\x00" + n.DataDir + "\x00")
	self := os.Getpid()
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, err := parentPID(pid); err != nil || ppid != self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, want) {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("find the process of node %s: %d children of pid %d with --data-dir %s", n.Name, len(found), self, n.DataDir)
	}
	return found[0], nil
}

// parentPID reads the 4th field of /proc/<pid>/stat (after the command name,
// which may contain spaces and parentheses).
func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	return strconv.Atoi(f[1])
}

// memStatus is what /proc/<pid>/status says about a process's memory (KB).
type memStatus struct {
	vmRSS, rssAnon, rssShmem, rssFile int64
	threads                           int64
}

func (m memStatus) String() string {
	return fmt.Sprintf("VmRSS %.1f MB (RssAnon %.1f MB, RssShmem %.1f MB, RssFile %.1f MB), %d threads",
		float64(m.vmRSS)/1024, float64(m.rssAnon)/1024, float64(m.rssShmem)/1024, float64(m.rssFile)/1024, m.threads)
}

func (m memStatus) add(o memStatus) memStatus {
	return memStatus{m.vmRSS + o.vmRSS, m.rssAnon + o.rssAnon, m.rssShmem + o.rssShmem, m.rssFile + o.rssFile, m.threads + o.threads}
}

func (m memStatus) sub(o memStatus) memStatus {
	return memStatus{m.vmRSS - o.vmRSS, m.rssAnon - o.rssAnon, m.rssShmem - o.rssShmem, m.rssFile - o.rssFile, m.threads - o.threads}
}

func (m memStatus) div(d int64) memStatus {
	return memStatus{m.vmRSS / d, m.rssAnon / d, m.rssShmem / d, m.rssFile / d, m.threads / d}
}

func readMem(pid int) (memStatus, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return memStatus{}, fmt.Errorf("node process memory: %w", err)
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (memStatus, error) {
	var m memStatus
	fields := map[string]*int64{"VmRSS": &m.vmRSS, "RssAnon": &m.rssAnon, "RssShmem": &m.rssShmem, "RssFile": &m.rssFile, "Threads": &m.threads}
	seen := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		dst := fields[key]
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			return m, fmt.Errorf("status field %s: no value", key)
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("status field %s: %w", key, err)
		}
		*dst = v
		seen++
	}
	if seen != len(fields) {
		return m, fmt.Errorf("status: found %d of the fields VmRSS, RssAnon, RssShmem, RssFile, Threads", seen)
	}
	return m, nil
}
