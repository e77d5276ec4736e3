// Command reliability renders the fault suite's records (written by the
// scenarios through internal/reliability.Record) into docs/reliability.md.
//
//	go run ./hack/reliability RECORDS OUT.md
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/wasilet/wasilet/internal/reliability"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: reliability RECORDS OUT.md")
		os.Exit(2)
	}
	entries, err := reliability.Read(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
	if len(entries) == 0 {
		fmt.Fprintln(os.Stderr, "reliability: no scenario recorded anything (were the end-to-end tests skipped?)")
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[2], []byte(reliability.Render(entries, machine())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
	fmt.Printf("reliability: %d scenarios → %s\n", len(entries), os.Args[2])
}

// machine describes where the run happened: commit, CPUs, kernel, Go.
func machine() string {
	commit := "unknown commit"
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	kernel := "unknown kernel"
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		kernel = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("commit %s, %d CPUs, %s, %s", commit, runtime.NumCPU(), kernel, runtime.Version())
}
