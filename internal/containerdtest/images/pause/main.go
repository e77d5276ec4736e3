// Command pause is the sandbox ("pause") image of the container baseline in
// internal/containerdtest: it holds a pod's namespaces, reaps any child it
// inherits and exits 0 on SIGTERM or SIGINT. Built statically (CGO_ENABLED=0)
// by the harness and pushed to the local registry; never pulled from the
// internet.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every child that has exited (several may share one SIGCHLD).
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
