package nodebench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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
