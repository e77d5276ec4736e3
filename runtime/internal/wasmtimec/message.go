package wasmtimec

import "strings"

// wasmtime reports errors as anyhow chains printed with "{:?}":
//
//	<headline>
//
//	Caused by:
//	    0: <cause>
//	    1: <cause>
//
//	Stack backtrace:        (only when RUST_BACKTRACE/RUST_LIB_BACKTRACE is set)
//	   0: <unknown> ...
//
// For a trap the headline is "error while executing at wasm backtrace:"
// followed by the guest's frames. These helpers turn that into a one-line
// summary and a detail text without the (useless) host stack.

// cleanMessage drops the host stack backtrace and surrounding blank space.
func cleanMessage(s string) string {
	if i := strings.Index(s, "Stack backtrace:"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

const wasmBacktraceHeadline = "error while executing at wasm backtrace:"

// summarize returns one line: the headline (unless it only introduces a
// wasm backtrace) and every cause, joined by ": ".
func summarize(s string) string {
	s = cleanMessage(s)
	head, causes, _ := strings.Cut(s, "\n\nCaused by:")
	var parts []string
	if !strings.HasPrefix(head, wasmBacktraceHeadline) {
		parts = append(parts, strings.TrimSpace(head))
	}
	for _, line := range strings.Split(causes, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		// Numbered causes: "0: text".
		if n, rest, ok := strings.Cut(line, ": "); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			line = rest
		}
		parts = append(parts, line)
	}
	if len(parts) == 0 {
		return strings.TrimSpace(strings.SplitN(s, "\n", 2)[0])
	}
	return strings.Join(parts, ": ")
}
