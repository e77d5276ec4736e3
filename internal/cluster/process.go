package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// component describes one process of the cluster.
type component struct {
	name  string   // e.g. "kube-apiserver"; also names its log and pid file
	bin   string   // absolute path of the executable
	args  []string // arguments
	env   []string // extra environment (appended to os.Environ())
	ports []int    // ports it listens on (checked before it starts)
	// ready reports nil once the component serves. It is polled.
	ready func(ctx context.Context) error
}

// proc is a started component.
type proc struct {
	c       *component
	pid     int
	logPath string
	pidPath string
	exited  chan struct{} // closed when the process has exited (own children only)
	waitErr error         // valid after exited is closed
}

// startOptions says where components keep their logs and pid files.
type startOptions struct {
	logDir, runDir string
	// dieWithParent kills the component when the starting process dies
	// (tests). Otherwise the component outlives it (`wasilet cluster up`).
	dieWithParent bool
}

// checkPortFree fails with an error naming the port and its component when
// something already listens on 127.0.0.1:port.
func checkPortFree(port int, who string) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d for %s is in use on 127.0.0.1 (choose another port or stop what listens there): %w", port, who, err)
	}
	return l.Close()
}

// start launches the component with its output appended to its log file and
// records its pid. It returns once the process runs; see waitReady.
func (c *component) start(o startOptions) (*proc, error) {
	for _, p := range c.ports {
		if err := checkPortFree(p, c.name); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(c.bin); err != nil {
		return nil, fmt.Errorf("%s: binary %s: %w (run `./just tools`)", c.name, c.bin, err)
	}
	if err := os.MkdirAll(o.logDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.runDir, 0o755); err != nil {
		return nil, err
	}
	p := &proc{
		c:       c,
		logPath: filepath.Join(o.logDir, c.name+".log"),
		pidPath: filepath.Join(o.runDir, c.name+".pid"),
		exited:  make(chan struct{}),
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: open log: %w", c.name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s starting %s %s\n", time.Now().UTC().Format(time.RFC3339), c.bin, strings.Join(c.args, " "))

	cmd := exec.Command(c.bin, c.args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = o.runDir
	// Its own session: a terminal's Ctrl-C in `wasilet cluster up` does not
	// reach it, and Down can signal the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if o.dieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", c.name, err)
	}
	p.pid = cmd.Process.Pid
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	st, err := processStartTime(p.pid)
	if err != nil {
		// It exited already; waitReady reports it with the log tail.
		st = 0
	}
	if err := os.WriteFile(p.pidPath, []byte(fmt.Sprintf("%d %d\n", p.pid, st)), 0o644); err != nil {
		_ = p.kill()
		return nil, fmt.Errorf("%s: write pid file: %w", c.name, err)
	}
	return p, nil
}

// waitReady polls the component's readiness until it answers, the process
// exits (an error carrying the tail of its log), or ctx ends.
func (p *proc) waitReady(ctx context.Context) error {
	if p.c.ready == nil {
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-p.exited:
			return p.exitError()
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = p.c.ready(rctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return p.exitError()
		case <-ctx.Done():
			return fmt.Errorf("%s did not become ready: %v (last check: %v)\n%s", p.c.name, ctx.Err(), last, logTail(p.logPath, 25))
		case <-tick.C:
		}
	}
}

func (p *proc) exitError() error {
	status := "exited"
	if p.waitErr != nil {
		status = p.waitErr.Error()
	}
	return fmt.Errorf("%s exited early (%s); last lines of %s:\n%s", p.c.name, status, p.logPath, logTail(p.logPath, 25))
}

func (p *proc) kill() error {
	return stopPID(p.pid, 0, p.c.name)
}

// logTail returns the last n lines of a log file, indented.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString("    ")
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	return strings.TrimRight(buf.String(), "\n")
}

// processStartTime returns the start time (clock ticks since boot, field 22 of
// /proc/<pid>/stat) of a live process; pid files record it so that a reused
// pid is never mistaken for a component.
func processStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after it follow
	// the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d is a zombie", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether pid runs and is the process that was started at
// startTime (0: don't check).
func alive(pid int, startTime uint64) bool {
	st, err := processStartTime(pid)
	if err != nil {
		return false
	}
	return startTime == 0 || st == startTime
}

// readPIDFile returns the pid and start time recorded in a pid file.
func readPIDFile(path string) (pid int, startTime uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, 0, fmt.Errorf("empty pid file %s", path)
	}
	pid, err = strconv.Atoi(f[0])
	if err != nil || pid <= 1 {
		return 0, 0, fmt.Errorf("bad pid in %s: %q", path, f[0])
	}
	if len(f) > 1 {
		startTime, _ = strconv.ParseUint(f[1], 10, 64)
	}
	return pid, startTime, nil
}

// stopPID stops a process (and its process group, which it leads): SIGTERM,
// then SIGKILL after 10 s, and waits until it is gone.
func stopPID(pid int, startTime uint64, name string) error {
	if !alive(pid, startTime) {
		return nil
	}
	signal := func(sig syscall.Signal) {
		// Negative pid: the whole group (components run in their own session).
		if err := syscall.Kill(-pid, sig); err != nil {
			_ = syscall.Kill(pid, sig)
		}
	}
	signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid, startTime) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	signal(syscall.SIGKILL)
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid, startTime) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", name, pid)
}

// stopByPIDFile stops the component recorded in a pid file and removes the
// file. A missing pid file means nothing to stop.
func stopByPIDFile(path, name string) error {
	pid, st, err := readPIDFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		_ = os.Remove(path)
		return nil
	}
	if err := stopPID(pid, st, name); err != nil {
		return err
	}
	return os.Remove(path)
}
