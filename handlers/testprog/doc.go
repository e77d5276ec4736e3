// Command testprog is the WASI test program the runtime, node and component
// tests drive. It runs a list of steps given as arguments; steps are separated
// by a "--" or ";" argument, so one pod can do several things:
//
//	testprog hello                      print "Hello, world!"
//	testprog args                       print argv, one per line, argv[0] first
//	testprog env [NAME]                 print NAME=value, or every variable
//	testprog echo TEXT...               print TEXT (joined by spaces) to stdout
//	testprog stderr TEXT...             print TEXT to stderr
//	testprog write PATH CONTENT         create or truncate PATH with CONTENT
//	testprog append PATH CONTENT        append CONTENT to PATH
//	testprog read PATH                  print PATH's content
//	testprog cat                        copy stdin to stdout
//	testprog ls DIR                     print DIR's entry names, one per line
//	testprog mkdir PATH                 create PATH and its parents
//	testprog exists PATH                fail unless PATH exists
//	testprog absent PATH                fail if PATH exists
//	testprog cannot-write PATH          fail if writing PATH succeeds (sandbox tests)
//	testprog cannot-read PATH           fail if reading PATH succeeds (sandbox tests)
//	testprog exit N                     exit with code N at once
//	testprog fail MSG                   write MSG to /dev/termination-log (if it
//	                                    exists) and stderr, exit 1
//	testprog alloc SIZE                 allocate and touch SIZE bytes (100Mi, 64Ki,
//	                                    1G, 4096) in 1 MiB chunks, keeping them
//	testprog spin                       loop forever without calling the host
//	testprog sleep DUR                  sleep DUR (Go duration, e.g. 2s)
//	testprog tick DUR [N]               print "tick I" every DUR, N times (0 or
//	                                    absent: forever)
//	testprog print-forever [DUR]        same as tick DUR (default 1s) forever
//	testprog recurse                    recurse until the stack gives out
//	testprog flood                      write 100-byte lines to stdout forever
//	testprog open-files N DIR           create N files in DIR, keeping them open;
//	                                    print how many opened (and the error)
//
// For example `testprog write /data/x hi ; read /data/x ; exit 3` prints "hi"
// and exits 3. A failing step prints "testprog: STEP: REASON" to stderr and
// exits 1; with no steps testprog prints a usage line and exits 2.
//
// The logic is in run, so it is tested natively as well as built for
// GOOS=wasip1 GOARCH=wasm by hack/wasm.sh (bin/wasm/testprog.wasm and the
// WASI p2 component bin/wasm/testprog.component.wasm).
package main
