package main

import (
	"fmt"
	"os"

	"github.com/wasilet/wasilet/internal/startgc"
)

func main() {
	startgc.Done() // the collector was off during package initialization
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "wasilet:", err)
		os.Exit(exitCode(err))
	}
}
