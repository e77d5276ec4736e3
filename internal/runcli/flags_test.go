package runcli

import (
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestParseAgreesWithPflag: every command line Early's parser accepts is
// read exactly as pflag reads it with the same flag list (as the cobra verb
// defines them), and what it declines is what pflag refuses, plus help.
func TestParseAgreesWithPflag(t *testing.T) {
	for _, line := range []string{
		"app.wasm",
		"app.wasm a b",
		"--env A=1 app.wasm",
		"-e A=1 -eB=2 -e=C=3 --env=D=4 app.wasm",
		"app.wasm --env A=1 x --dir /a:/b:ro",
		"--memory 64Mi --timeout 5s --cache-dir none --argv0 x app.wasm",
		"--timeout=1m30s app.wasm -- --env not-a-flag -x",
		"--plain-http app.wasm false",
		"--plain-http=false --insecure-registry r:5000 ref:v1",
		"--store /s ref -- a",
		"-- app.wasm --memory",
		"app.wasm - x",
		"--argv0 -dash app.wasm",
		"--env",
		"--timeout soon app.wasm",
		"--plain-http=maybe app.wasm",
		"--nope app.wasm",
		"-x app.wasm",
		"--help",
		"-h",
		"app.wasm --help",
	} {
		argv := strings.Fields(line)
		var want Flags
		fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		for _, f := range want.List() {
			fs.VarP(f.Value, f.Name, f.Short, f.Usage)
			if f.Bool {
				fs.Lookup(f.Name).NoOptDefVal = "true"
			}
		}
		perr := fs.Parse(argv)

		var got Flags
		args, err := got.parse(argv)
		switch {
		case perr != nil && err == nil:
			t.Errorf("%q: pflag refuses it (%v), Early accepts it", line, perr)
		case perr == nil && err != nil:
			t.Errorf("%q: pflag accepts it, Early declines it", line)
		case perr == nil:
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(args, fs.Args()) && len(args)+len(fs.Args()) > 0 {
				t.Errorf("%q:\n Early %+v %q\n pflag %+v %q", line, got, args, want, fs.Args())
			}
		}
	}
}

// TestEarlyDeclines: Early takes only `run` of an existing regular file.
func TestEarlyDeclines(t *testing.T) {
	dir := t.TempDir()
	for _, argv := range [][]string{
		nil,
		{"version"},
		{"run"},
		{"run", "--help"},
		{"run", dir},                     // a directory
		{"run", dir + "/missing.wasm"},   // a missing file
		{"run", "127.0.0.1:5000/app:v1"}, // a reference
	} {
		if _, _, ok := Early(argv); ok {
			t.Errorf("Early(%q) took it", argv)
		}
	}
	f, args, ok := Early([]string{"run", "--env", "A=1", "flags_test.go", "x"})
	if !ok || !reflect.DeepEqual(f.Env, []string{"A=1"}) || !reflect.DeepEqual(args, []string{"flags_test.go", "x"}) {
		t.Errorf("Early of a file: %v %+v %q", ok, f, args)
	}
}
