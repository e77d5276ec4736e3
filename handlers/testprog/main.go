package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	// Lets the WASI p2 component build run and grow its heap.
	_ "github.com/wasilet/wasilet/handlers/internal/wasmalloc"
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// exitCode is returned by a step that ends the program with a given code.
type exitCode int

func (e exitCode) Error() string { return "exit " + strconv.Itoa(int(e)) }

// run executes the steps in args[1:] and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	steps := split(args[1:])
	if len(steps) == 0 {
		fmt.Fprintln(stderr, "usage: testprog STEP [ARGS] [-- STEP [ARGS]]... (see the package doc)")
		return 2
	}
	for _, step := range steps {
		err := do(step, args, stdin, stdout, stderr)
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec)
		}
		if err != nil {
			fmt.Fprintf(stderr, "testprog: %s: %v\n", strings.Join(step, " "), err)
			return 1
		}
	}
	return 0
}

// split cuts args into steps at "--" and ";" arguments, dropping empty steps.
func split(args []string) [][]string {
	var steps [][]string
	var cur []string
	for _, a := range args {
		if a == "--" || a == ";" {
			if len(cur) > 0 {
				steps = append(steps, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, a)
	}
	if len(cur) > 0 {
		steps = append(steps, cur)
	}
	return steps
}

func do(step, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, a := step[0], step[1:]
	need := func(n int) error {
		if len(a) < n {
			return fmt.Errorf("needs %d argument(s), got %d", n, len(a))
		}
		return nil
	}
	switch cmd {
	case "hello":
		_, err := fmt.Fprintln(stdout, "Hello, world!")
		return err
	case "args":
		for _, s := range argv {
			if _, err := fmt.Fprintln(stdout, s); err != nil {
				return err
			}
		}
		return nil
	case "env":
		if len(a) > 0 {
			v, ok := os.LookupEnv(a[0])
			if !ok {
				return fmt.Errorf("%s is not set", a[0])
			}
			_, err := fmt.Fprintf(stdout, "%s=%s\n", a[0], v)
			return err
		}
		env := os.Environ()
		sort.Strings(env)
		for _, kv := range env {
			if _, err := fmt.Fprintln(stdout, kv); err != nil {
				return err
			}
		}
		return nil
	case "echo":
		_, err := fmt.Fprintln(stdout, strings.Join(a, " "))
		return err
	case "stderr":
		_, err := fmt.Fprintln(stderr, strings.Join(a, " "))
		return err
	case "write", "append":
		if err := need(2); err != nil {
			return err
		}
		flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if cmd == "append" {
			flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		f, err := os.OpenFile(a[0], flag, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(f, a[1]); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case "read":
		if err := need(1); err != nil {
			return err
		}
		b, err := os.ReadFile(a[0])
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	case "cat":
		_, err := io.Copy(stdout, stdin)
		return err
	case "ls":
		if err := need(1); err != nil {
			return err
		}
		entries, err := os.ReadDir(a[0])
		if err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := fmt.Fprintln(stdout, e.Name()); err != nil {
				return err
			}
		}
		return nil
	case "mkdir":
		if err := need(1); err != nil {
			return err
		}
		return os.MkdirAll(a[0], 0o755)
	case "exists", "absent":
		if err := need(1); err != nil {
			return err
		}
		_, err := os.Stat(a[0])
		switch {
		case cmd == "exists" && err != nil:
			return err
		case cmd == "absent" && err == nil:
			return fmt.Errorf("%s exists", a[0])
		}
		return nil
	case "cannot-write":
		if err := need(1); err != nil {
			return err
		}
		f, err := os.OpenFile(a[0], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err == nil {
			_, err = io.WriteString(f, "escaped")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err == nil {
			return fmt.Errorf("writing %s succeeded", a[0])
		}
		_, err = fmt.Fprintf(stdout, "refused: %v\n", err)
		return err
	case "cannot-read":
		if err := need(1); err != nil {
			return err
		}
		if _, err := os.ReadFile(a[0]); err == nil {
			return fmt.Errorf("reading %s succeeded", a[0])
		} else {
			_, err = fmt.Fprintf(stdout, "refused: %v\n", err)
			return err
		}
	case "exit":
		if err := need(1); err != nil {
			return err
		}
		n, err := strconv.Atoi(a[0])
		if err != nil {
			return fmt.Errorf("exit code: %w", err)
		}
		return exitCode(n)
	case "fail":
		msg := strings.Join(a, " ")
		if _, err := os.Stat("/dev/termination-log"); err == nil {
			_ = os.WriteFile("/dev/termination-log", []byte(msg), 0o644)
		}
		fmt.Fprintln(stderr, msg)
		return exitCode(1)
	case "alloc":
		if err := need(1); err != nil {
			return err
		}
		n, err := parseSize(a[0])
		if err != nil {
			return err
		}
		kept = alloc(n)
		_, err = fmt.Fprintf(stdout, "allocated %d bytes\n", n)
		return err
	case "spin":
		spin()
		return nil
	case "sleep":
		if err := need(1); err != nil {
			return err
		}
		d, err := time.ParseDuration(a[0])
		if err != nil {
			return err
		}
		time.Sleep(d)
		return nil
	case "recurse":
		return fmt.Errorf("recursion ended at depth %d", recurse(0))
	case "flood":
		// Lines of 100 bytes, as fast as stdout takes them, forever.
		line := []byte(strings.Repeat("x", 99) + "\n")
		for {
			if _, err := stdout.Write(line); err != nil {
				return err
			}
		}
	case "open-files":
		if err := need(2); err != nil {
			return err
		}
		n, err := strconv.Atoi(a[0])
		if err != nil {
			return fmt.Errorf("count: %w", err)
		}
		var files []*os.File
		for i := range n {
			f, err := os.Create(filepath.Join(a[1], fmt.Sprintf("f%06d", i)))
			if err != nil {
				fmt.Fprintf(stdout, "opened %d files, then: %v\n", len(files), err)
				return nil
			}
			files = append(files, f)
		}
		fmt.Fprintf(stdout, "opened %d files\n", len(files))
		return nil
	case "tick", "print-forever":
		every, count := time.Second, 0
		if len(a) > 0 {
			d, err := time.ParseDuration(a[0])
			if err != nil {
				return err
			}
			every = d
		} else if cmd == "tick" {
			return need(1)
		}
		if cmd == "tick" && len(a) > 1 {
			n, err := strconv.Atoi(a[1])
			if err != nil {
				return fmt.Errorf("count: %w", err)
			}
			count = n
		}
		for i := 1; count == 0 || i <= count; i++ {
			if _, err := fmt.Fprintf(stdout, "tick %d\n", i); err != nil {
				return err
			}
			if count == 0 || i < count {
				time.Sleep(every)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown step %q", cmd)
}

// recurse calls itself until the stack gives out (it never returns
// normally).
//
//go:noinline
func recurse(depth int) int {
	var pad [64]byte
	pad[depth%64] = byte(depth)
	return recurse(depth+1) + int(pad[0])
}

// kept holds allocated memory so the collector cannot free it.
var kept [][]byte

// alloc allocates n bytes in chunks of at most 1 MiB and writes to every
// page, so the memory is really committed and linear memory grows gradually.
func alloc(n int64) [][]byte {
	const chunk = 1 << 20
	var out [][]byte
	for n > 0 {
		size := int64(chunk)
		if n < size {
			size = n
		}
		b := make([]byte, size)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		out = append(out, b)
		n -= size
	}
	return out
}

//go:noinline
func spin() {
	x := 0
	for {
		x++
		sink = x
	}
}

var sink int

// parseSize reads 4096, 64Ki, 100Mi, 1Gi, 10K, 10M, 1G.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}}
	mult := int64(1)
	num := s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult, num = u.mult, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}
