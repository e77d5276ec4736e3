package main

import (
	"os"

	_ "github.com/wasilet/wasilet/cmd/wasilet/internal/early" // `wasilet run FILE` before the rest initializes
	"github.com/wasilet/wasilet/internal/runcli"
	"github.com/wasilet/wasilet/internal/startgc"
)

func main() {
	startgc.Done() // the collector was off during package initialization
	os.Exit(runcli.Report(os.Stderr, newRootCommand().Execute()))
}
