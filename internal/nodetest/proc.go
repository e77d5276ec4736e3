package nodetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// RSS is a process's resident set in bytes (0 if unknown).
func RSS(pid int) int64 { return statusField(pid, "VmRSS:") << 10 }

// Threads is a process's number of OS threads (0 if unknown).
func Threads(pid int) int { return int(statusField(pid, "Threads:")) }

// statusField is the first number of a /proc/<pid>/status line (0 if
// unknown).
func statusField(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
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

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on every
// Linux architecture Go supports).
const clockTicks = 100

// CPUTime is the user plus system time a process has used.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start with field 3 (state).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// CPUShares measures the CPU time each group of processes uses over window,
// as a share of one core (0.01 is 1 %), and returns the window as it really
// was. A process that goes away meanwhile is an error.
func CPUShares(ctx context.Context, window time.Duration, groups ...[]int) ([]float64, time.Duration, error) {
	sample := func() ([]time.Duration, error) {
		sum := make([]time.Duration, len(groups))
		for g, pids := range groups {
			for _, pid := range pids {
				d, err := CPUTime(pid)
				if err != nil {
					return nil, fmt.Errorf("process %d went away: %w", pid, err)
				}
				sum[g] += d
			}
		}
		return sum, nil
	}
	before, err := sample()
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-time.After(window):
	}
	after, err := sample()
	if err != nil {
		return nil, 0, err
	}
	wall := time.Since(start)
	shares := make([]float64, len(groups))
	for g := range groups {
		shares[g] = float64(after[g]-before[g]) / float64(wall)
	}
	return shares, wall.Round(time.Millisecond), nil
}
