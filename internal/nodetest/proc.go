package nodetest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// RSS is a process's resident set in bytes (0 if unknown).
func RSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// OpenFiles counts a process's open file descriptors (-1 if unknown).
func OpenFiles(pid int) int {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(es)
}

// Threads is a process's number of OS threads (0 if unknown).
func Threads(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Threads:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on every
// Linux architecture Go supports).
const clockTicks = 100

// CPUTime is the user plus system time a process has used (0 if unknown).
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start with field 3 (state).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// IdleCPU is the share of one core (in percent) that the processes used
// over d, measured as their CPU time's growth.
func IdleCPU(d time.Duration, pids ...int) float64 {
	var before time.Duration
	for _, p := range pids {
		before += CPUTime(p)
	}
	start := time.Now()
	time.Sleep(d)
	var after time.Duration
	for _, p := range pids {
		after += CPUTime(p)
	}
	return 100 * float64(after-before) / float64(time.Since(start))
}
