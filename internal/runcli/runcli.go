package runcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/wasilet/wasilet/runtime"
)

// Flags are `wasilet run`'s flags.
type Flags struct {
	Env       []string
	Dirs      []string
	Memory    string
	Timeout   time.Duration
	CacheDir  string
	Argv0     string
	Store     string
	PlainHTTP bool
	Insecure  []string
}

// Stdio is the guest's standard streams.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Pulled is a Wasm binary read from an OCI store.
type Pulled struct {
	Wasm   []byte
	Digest string // the layer's digest
	Argv0  string // the default argv[0]: the repository's last element
}

// Puller pulls an OCI reference; nil where references are not supported.
type Puller func(ctx context.Context, ref string, f *Flags) (Pulled, error)

// interrupted is the error of a run ended by SIGINT or SIGTERM.
var interrupted = &ExitError{Code: 130, Err: errors.New("interrupted")}

// Run runs args[0] (a file, or a reference pulled with pull) with args[1:]
// as the guest's arguments. Its error carries the exit status (ExitCode).
func Run(ctx context.Context, f *Flags, args []string, stdio Stdio, pull Puller) error {
	if len(args) == 0 {
		return errors.New("run: no FILE or REF given")
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	spec := runtime.Spec{Name: f.Argv0, Args: args[1:], Stdin: stdio.In, Stdout: stdio.Out, Stderr: stdio.Err, Timeout: f.Timeout}
	var err error
	if spec.Env, err = parseEnv(f.Env); err != nil {
		return err
	}
	if spec.Mounts, err = parseDirs(f.Dirs); err != nil {
		return err
	}
	if f.Memory != "" {
		if spec.MemoryLimit, err = runtime.ParseBytes(f.Memory); err != nil {
			return fmt.Errorf("--memory: %w", err)
		}
	}
	cacheDir := f.CacheDir
	switch cacheDir {
	case "":
		cacheDir = DefaultCacheDir()
	case "none":
		cacheDir = ""
	}

	target := args[0]
	file, argv0, err := localFile(target)
	var pulled Pulled
	switch {
	case err != nil:
		return err
	case file == "" && pull == nil:
		return fmt.Errorf("%s is not a file, and references are not supported here", target)
	case file == "":
		if pulled, err = pull(ctx, target, f); err != nil {
			return err
		}
		argv0 = pulled.Argv0
	}
	if spec.Name == "" {
		spec.Name = argv0
	}
	// Without --timeout only a signal would stop the guest, and a signal
	// ends the process: so the guest is compiled without epoch checks, as
	// the wasmtime CLI compiles it unless given a timeout (less to compile,
	// no check on every loop), and a signal exits at once with 130, the
	// status of a shell's interrupted command.
	uninterruptible := f.Timeout == 0
	if uninterruptible {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		finished := make(chan struct{})
		defer close(finished)
		go func() {
			select {
			case <-sigs:
				os.Exit(Report(stdio.Err, interrupted))
			case <-finished:
			}
		}()
	}
	engine, err := runtime.NewEngine(runtime.Options{CacheDir: cacheDir, Uninterruptible: uninterruptible})
	if err != nil {
		return err
	}
	defer engine.Close()
	var prog *runtime.Program
	if file != "" {
		// An unchanged file with a cached artifact is not even read.
		prog, err = engine.LoadFile(ctx, file) // "load FILE: …"
	} else if prog, err = engine.Load(ctx, pulled.Wasm, pulled.Digest); err != nil {
		err = fmt.Errorf("load %s: %w", target, err)
	}
	if err != nil {
		return err
	}
	res, err := prog.Run(ctx, spec)
	if err != nil {
		return fmt.Errorf("run %s: %w", target, err)
	}
	switch {
	case res.ExitCode == 0:
		return nil
	case res.Reason == runtime.ReasonKilled && ctx.Err() != nil: // SIGINT/SIGTERM
		return interrupted
	case res.Reason == runtime.ReasonError && res.ExitCode != runtime.ExitCodeTrap:
		return &ExitError{Code: res.ExitCode, Err: fmt.Errorf("guest exited with code %d", res.ExitCode)}
	}
	return &ExitError{Code: res.ExitCode, Err: fmt.Errorf("%s: %s", res.Reason, res.Message)}
}

// localFile is target and its default argv[0] when target is an existing
// file, "" when it should be pulled as a reference, or an error for a
// directory or a missing file meant as a path.
func localFile(target string) (file, argv0 string, err error) {
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.IsDir():
		return "", "", fmt.Errorf("%s is a directory, not a wasm file", target)
	case err == nil:
		return target, path.Base(target), nil
	case looksLikePath(target):
		return "", "", err
	}
	return "", "", nil
}

// looksLikePath is true for targets meant as files (./x, /x, x.wasm), so a
// missing file is reported as such rather than as a bad reference.
func looksLikePath(s string) bool {
	return strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") || strings.HasSuffix(s, ".wasm")
}

func parseEnv(flags []string) ([]string, error) {
	env := make([]string, 0, len(flags))
	for _, kv := range flags {
		k, _, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("--env %q: want K=V or K", kv)
		}
		if !ok {
			v, set := os.LookupEnv(k)
			if !set {
				continue
			}
			kv = k + "=" + v
		}
		env = append(env, kv)
	}
	return env, nil
}

func parseDirs(flags []string) ([]runtime.Mount, error) {
	var mounts []runtime.Mount
	for _, d := range flags {
		parts := strings.Split(d, ":")
		m := runtime.Mount{HostPath: parts[0], GuestPath: parts[0]}
		switch {
		case len(parts) > 3 || parts[0] == "":
			return nil, fmt.Errorf("--dir %q: want HOST[:GUEST[:ro|rw]]", d)
		case len(parts) == 3:
			switch parts[2] {
			case "ro":
				m.ReadOnly = true
			case "rw":
			default:
				return nil, fmt.Errorf("--dir %q: mode %q is not ro or rw", d, parts[2])
			}
			fallthrough
		case len(parts) == 2:
			if parts[1] != "" {
				m.GuestPath = parts[1]
			}
		}
		mounts = append(mounts, m)
	}
	return mounts, nil
}

// DefaultCacheDir is the compiled-code cache `wasilet run` uses by default.
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return path.Join(dir, "wasilet", "compiled")
}

// ExitError carries the exit status a command wants the process to end
// with, such as a guest's own exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return "exit status"
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the status for a command's error: an ExitError's code, else 1.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}

// Report prints a command's error the way the wasilet binary does and
// returns the exit status (0 for nil).
func Report(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(w, "wasilet:", err)
	return ExitCode(err)
}
