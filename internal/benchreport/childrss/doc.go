// Command childrss runs a command and reports its wall time and peak RSS.
//
// A child's ru_maxrss on Linux is never below the RSS its parent had when it
// forked (exec carries the old address space's high-water mark over), so a
// benchmark that starts a command from its own, large process reads its own
// size instead of the command's. childrss is small: started by the
// benchmark, it starts the command and reports what the kernel accounted to
// it, with a floor of childrss's own few MiB.
//
// Usage:
//
//	childrss -o FILE -- COMMAND [ARG...]
//
// The command inherits childrss's stdin, stdout and stderr. FILE receives one
// JSON object: {"wallNs":…,"maxRssKiB":…,"exitCode":…}. childrss exits 0
// when it could run the command (whatever the command's own exit code), 2
// for bad usage and 1 when the command could not be started.
package main
