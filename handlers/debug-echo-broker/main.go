// Command debug-echo-broker is the broker of the debugEcho demo: the Wasm
// program Akri starts, as a pod, for each debugEcho device. It prints
//
//	Pod is running and using debugEcho device named: "foo0"
//
// with the device's description, which the agent puts in the environment
// variable DEBUG_ECHO_DESCRIPTION, and then stays running, asleep, until it is
// stopped. Without DEBUG_ECHO_DESCRIPTION it prints the line with "" and a
// warning on stderr, and stays running all the same: a broker that exits
// would only be restarted.
//
// The original demo's broker printed the value without %q; it showed quotes
// only because its proxy had kept the JSON quotes of the value.
//
// After that line it lists, one per line, the hash-qualified copies of the
// property the device plugin also gives it (DEBUG_ECHO_DESCRIPTION_<HASH>=…),
// so that a reader of its log sees which Instance it uses.
//
// hack/wasm.sh builds it to bin/wasm/debug-echo-broker.wasm and
// bin/wasm/debug-echo-broker.component.wasm.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	// Lets the WASI p2 component build run and grow its heap.
	_ "github.com/wasilet/wasilet/handlers/internal/wasmalloc"
)

// descriptionEnv is the device property debugEcho sets (debugecho.DescriptionProperty).
const descriptionEnv = "DEBUG_ECHO_DESCRIPTION"

func main() {
	greet(os.LookupEnv, os.Stdout, os.Stderr)
	qualified(os.Environ(), os.Stdout)
	for {
		time.Sleep(time.Hour) // a select{} would be a deadlock on wasip1
	}
}

// greet prints the broker's line, and a warning when the device is unknown.
func greet(lookup func(string) (string, bool), stdout, stderr io.Writer) {
	desc, ok := lookup(descriptionEnv)
	if !ok {
		fmt.Fprintf(stderr, "debug-echo-broker: %s is not set: this pod was not given a debugEcho device\n", descriptionEnv)
	}
	fmt.Fprintf(stdout, "Pod is running and using debugEcho device named: %q\n", desc)
}

// qualified prints the DEBUG_ECHO_DESCRIPTION_<HASH> variables of env, sorted.
func qualified(env []string, stdout io.Writer) {
	var lines []string
	for _, kv := range env {
		if strings.HasPrefix(kv, descriptionEnv+"_") {
			lines = append(lines, kv)
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
}
