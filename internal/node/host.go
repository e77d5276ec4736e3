package node

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Host facts behind the capacity defaults and the pressure conditions. Linux
// only (/proc), like the kubelet's own eviction signals.

func hostCPUs() int { return runtime.NumCPU() }

// hostMemory is MemTotal in bytes.
func hostMemory() (int64, error) { return meminfo("MemTotal") }

// memAvailable is MemAvailable in bytes (the kubelet's memory.available signal).
func memAvailable() (int64, error) { return meminfo("MemAvailable") }

func meminfo(field string) (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read host memory: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || name != field {
			continue
		}
		fs := strings.Fields(rest)
		if len(fs) == 0 {
			break
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/meminfo %s %q: %w", field, fs[0], err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("/proc/meminfo has no %s", field)
}

// fsStats reports the capacity and free space (bytes) and inodes of the
// filesystem holding dir (the kubelet's nodefs signals).
type fsStats struct {
	capacity, available int64
	inodes, inodesFree  int64
}

func statFS(dir string) (fsStats, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fsStats{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := int64(st.Bsize)
	return fsStats{
		capacity:   int64(st.Blocks) * bs,
		available:  int64(st.Bavail) * bs,
		inodes:     int64(st.Files),
		inodesFree: int64(st.Ffree),
	}, nil
}

// pidUsage returns the number of threads/processes on the host and pid_max
// (the kubelet's pid.available signal).
func pidUsage() (used, max int64, err error) {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 0, 0, fmt.Errorf("read pid_max: %w", err)
	}
	max, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse pid_max %q: %w", b, err)
	}
	la, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, 0, fmt.Errorf("read loadavg: %w", err)
	}
	fs := strings.Fields(string(la))
	if len(fs) < 4 {
		return 0, 0, fmt.Errorf("unexpected /proc/loadavg %q", la)
	}
	_, total, ok := strings.Cut(fs[3], "/")
	if !ok {
		return 0, 0, fmt.Errorf("unexpected /proc/loadavg field %q", fs[3])
	}
	used, err = strconv.ParseInt(total, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/loadavg %q: %w", fs[3], err)
	}
	return used, max, nil
}

// kernelVersion is the host's kernel release, shown by `kubectl get nodes -o wide`.
func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return string(bytes.TrimRight(u.Release[:], "\x00"))
}

// defaultNodeIP is the first global unicast IPv4 address of an interface that
// is up, or 127.0.0.1.
func defaultNodeIP() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip4 := ipn.IP.To4(); ip4 != nil && ip4.IsGlobalUnicast() {
				return ip4.String()
			}
		}
	}
	return "127.0.0.1"
}
