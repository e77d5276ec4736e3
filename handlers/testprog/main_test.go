package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runNative(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(append([]string{"testprog"}, args...), strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestSteps(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	t.Setenv("TESTPROG_VAR", "v=1")
	tests := []struct {
		name      string
		stdin     string
		args      []string
		code      int
		stdout    string
		stderrHas string
	}{
		{name: "no steps", code: 2, stderrHas: "usage"},
		{name: "hello", args: []string{"hello"}, stdout: "Hello, world!\n"},
		{name: "args", args: []string{"args", "x y"}, stdout: "testprog\nargs\nx y\n"},
		{name: "env one", args: []string{"env", "TESTPROG_VAR"}, stdout: "TESTPROG_VAR=v=1\n"},
		{name: "env missing", args: []string{"env", "TESTPROG_NOPE"}, code: 1, stderrHas: "not set"},
		{name: "echo and stderr", args: []string{"echo", "a", "b", ";", "stderr", "oops"}, stdout: "a b\n", stderrHas: "oops"},
		{name: "write read append", args: []string{"write", file, "one", "--", "append", file, "two", ";", "read", file}, stdout: "onetwo"},
		{name: "exists absent", args: []string{"exists", file, ";", "absent", file + ".no"}},
		{name: "exists fails", args: []string{"exists", file + ".no"}, code: 1, stderrHas: "testprog: exists"},
		{name: "absent fails", args: []string{"absent", file}, code: 1, stderrHas: "exists"},
		{name: "cannot-write fails when allowed", args: []string{"cannot-write", file}, code: 1, stderrHas: "succeeded"},
		{name: "cannot-read refused", args: []string{"cannot-read", file + ".no"}, stdout: "refused: "},
		{name: "exit stops the steps", args: []string{"exit", "42", ";", "hello"}, code: 42},
		{name: "fail", args: []string{"fail", "bad", "thing"}, code: 1, stderrHas: "bad thing"},
		{name: "cat", stdin: "in\n", args: []string{"cat"}, stdout: "in\n"},
		{name: "alloc", args: []string{"alloc", "3Mi"}, stdout: "allocated 3145728 bytes\n"},
		{name: "bad size", args: []string{"alloc", "lots"}, code: 1, stderrHas: "bad size"},
		{name: "tick", args: []string{"tick", "1ms", "2"}, stdout: "tick 1\ntick 2\n"},
		{name: "sleep", args: []string{"sleep", "1ms", ";", "echo", "up"}, stdout: "up\n"},
		{name: "unknown", args: []string{"frobnicate"}, code: 1, stderrHas: "unknown step"},
		{name: "missing argument", args: []string{"write", file}, code: 1, stderrHas: "needs 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runNative(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.HasPrefix(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderrHas) {
				t.Fatalf("got code %d stdout %q stderr %q; want code %d stdout %q… stderr containing %q",
					code, stdout, stderr, tt.code, tt.stdout, tt.stderrHas)
			}
		})
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "64Ki": 64 << 10, "100Mi": 100 << 20, "1Gi": 1 << 30, "10K": 10000, "2M": 2e6, "1G": 1e9} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1Xi", "Mi"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
}
