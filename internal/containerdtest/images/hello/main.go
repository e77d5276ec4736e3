// Command hello is the workload image of the container baseline in
// internal/containerdtest: it prints one line on stdout, then exits 0
// (no argument, or "exit") or sleeps until SIGTERM or SIGINT ("sleep") and
// exits 0. Built statically (CGO_ENABLED=0) by the harness.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// line is what the container prints; containerdtest.HelloLine must match.
const line = "hello from the container baseline"

func main() {
	mode := "exit"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "exit":
		fmt.Println(line)
	case "sleep":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		fmt.Println(line)
		<-sigs
	default:
		fmt.Fprintf(os.Stderr, "hello: unknown mode %q (want exit or sleep)\n", mode)
		os.Exit(2)
	}
}
