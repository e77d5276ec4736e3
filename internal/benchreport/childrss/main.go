package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

type report struct {
	WallNs    int64 `json:"wallNs"`
	MaxRSSKiB int64 `json:"maxRssKiB"`
	ExitCode  int   `json:"exitCode"`
}

func main() {
	out := flag.String("o", "", "file to write the JSON report to")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: childrss -o FILE -- COMMAND [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "childrss:", err)
		os.Exit(1)
	}
	err = cmd.Wait()
	r := report{WallNs: int64(time.Since(start))}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintln(os.Stderr, "childrss:", err)
		os.Exit(1)
	}
	r.ExitCode = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.MaxRSSKiB = ru.Maxrss
	}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "childrss:", err)
		os.Exit(1)
	}
}
