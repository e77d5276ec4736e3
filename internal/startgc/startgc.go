package startgc

import (
	"os"
	"runtime/debug"
)

// unchanged marks percent while init left the collector alone.
const unchanged = -2

// percent is the GC percentage in force before init turned the collector
// off (GOGC from the environment, else 100), or unchanged.
var percent = unchanged

func init() {
	if len(os.Args) > 1 && os.Args[1] == "run" {
		// `wasilet run FILE` runs its guest from the init function of
		// package early, which must not import this package (through
		// runtime/debug it would wait for most of the binary's
		// initialization), and which may run after this one: the guest
		// must find the collector on.
		return
	}
	percent = debug.SetGCPercent(-1)
}

// Done turns the collector back on with the setting it had before package
// initialization. Call it first thing in main; later calls do nothing more.
func Done() {
	if percent != unchanged {
		debug.SetGCPercent(percent)
	}
}
