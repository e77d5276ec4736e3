// Command debug-echo is Akri's debugEcho discovery handler as a WASI program,
// run as a pod next to `wasilet proxy`, with which it talks through files in
// a shared hostPath directory (see package proxy/exchange for the protocol).
//
//	debug-echo [DIR]
//
// DIR, the exchange directory, defaults to $WDE_DIR, then /tmp/wde-dir (the
// volume's mount path in the demo's pod). Every $DEBUG_ECHO_POLL_INTERVAL (a
// Go duration, default 100ms) it checks DIR and its request sub-directories:
// for each in.in, a JSON object with "descriptions" (debugEcho's
// discoveryDetails), it writes out.out with one device per description (id =
// the description, property DEBUG_ECHO_DESCRIPTION = the description), or
// none while DIR/debug-echo-availability.txt holds OFFLINE. A missing
// availability file means online; the handler never writes it.
//
// out.out is written atomically, and only when its content must change: a
// new in.in, a change of availability, or an out.out that went missing or was
// altered. When nothing changed a check costs a few stat calls. A malformed
// or unreadable in.in is logged once, to stderr, and answered by nothing (the
// previous out.out stays as it is) until it is fixed; a request directory
// that goes away is forgotten. The program runs until it is stopped.
//
// Differences from the original demo's handler: it serves several requests
// (sub-directories), polls every 100 ms instead of 5 s, does not overwrite the
// availability file at start, writes atomically and does not crash on bad
// input.
//
// The logic is in watcher.go and tested natively; hack/wasm.sh builds it to
// bin/wasm/debug-echo.wasm and bin/wasm/debug-echo.component.wasm.
package main
