package benchreport

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Machine describes where a run happened, on one line: commit, CPU model and
// count, memory, kernel, Go.
func Machine() string {
	commit := commit()
	if commit == "" {
		commit = "unknown commit"
	}
	kernel := "unknown kernel"
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		kernel = strings.TrimSpace(string(out))
	}
	cpu := procField("/proc/cpuinfo", "model name")
	mem := procField("/proc/meminfo", "MemTotal")
	s := fmt.Sprintf("commit %s, %d CPUs", commit, runtime.NumCPU())
	if cpu != "" {
		s += " (" + cpu + ")"
	}
	if mem != "" {
		s += ", " + mem + " memory"
	}
	s += ", " + kernel + ", " + runtime.Version()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			s += fmt.Sprintf("; load average %s %s %s when rendered (the machine is shared: ratios, measured in the same run, travel better than absolute times)", f[0], f[1], f[2])
		}
	}
	return s
}

func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
