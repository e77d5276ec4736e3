// Command reliability renders the fault suite's records (written by the
// scenarios through internal/reliability.Record) into docs/reliability.md.
//
//	go run ./hack/reliability RECORDS OUT.md
package main

import (
	"fmt"
	"os"

	"github.com/wasilet/wasilet/internal/benchreport"
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
	if err := os.WriteFile(os.Args[2], []byte(reliability.Render(entries, benchreport.Machine())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
	fmt.Printf("reliability: %d scenarios → %s\n", len(entries), os.Args[2])
}
