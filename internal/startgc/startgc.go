package startgc

import "runtime/debug"

// percent is the GC percentage in force before init turned the collector
// off (GOGC from the environment, else 100).
var percent = debug.SetGCPercent(-1)

// Done turns the collector back on with the setting it had before package
// initialization. Call it first thing in main; later calls do nothing more.
func Done() {
	debug.SetGCPercent(percent)
}
