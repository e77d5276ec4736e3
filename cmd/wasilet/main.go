package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "wasilet:", err)
		os.Exit(exitCode(err))
	}
}
