package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasilet/wasilet/oci"
	"github.com/wasilet/wasilet/runtime"
)

func init() { register(newRunCommand) }

func newRunCommand() *cobra.Command {
	var (
		env       []string
		dirs      []string
		memory    string
		timeout   time.Duration
		cacheDir  string
		name      string
		storeDir  string
		plainHTTP bool
		insecure  []string
	)
	cmd := &cobra.Command{
		Use:   "run FILE|REF [flags] [-- ARGS...]",
		Short: "Run a Wasm module or component locally, like `wasmtime run`",
		Long: `Run runs a WASI command: a core module (WASI p1) or a component (WASI p2),
told apart by its header. FILE is a local .wasm file; anything that is not an
existing file is an OCI reference, pulled into the local store first (see
'wasilet pull'). ARGS follow argv[0] (the file or repository name); put them after "--" when
they start with a dash, since wasilet's flags may come before or after FILE.

The guest's stdin, stdout and stderr are wasilet's; wasilet exits with the
guest's exit code: 134 for a trap, 137 when stopped by --timeout or for
running out of --memory, 130 when interrupted.

Compiled code is cached in --cache-dir, so later runs of the same binary
start in milliseconds.`,
		Example: `  wasilet run hello.wasm
  wasilet run --env NAME=x --dir ./data:/data --dir /etc:/etc:ro app.wasm -- serve --port 80
  wasilet run --memory 64Mi --timeout 5s 127.0.0.1:5000/demo/app:v1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()

			spec := runtime.Spec{
				Name:   name,
				Args:   args[1:],
				Stdin:  cmd.InOrStdin(),
				Stdout: cmd.OutOrStdout(),
				Stderr: cmd.ErrOrStderr(),
			}
			var err error
			if spec.Env, err = parseEnvFlags(env); err != nil {
				return err
			}
			if spec.Mounts, err = parseDirFlags(dirs); err != nil {
				return err
			}
			if memory != "" {
				if spec.MemoryLimit, err = runtime.ParseBytes(memory); err != nil {
					return fmt.Errorf("--memory: %w", err)
				}
			}
			spec.Timeout = timeout
			if cacheDir == "" {
				cacheDir = defaultCompiledCacheDir()
			}
			if cacheDir == "none" {
				cacheDir = ""
			}

			file, wasm, digest, argv0, err := loadWasm(ctx, cmd, args[0], storeDir, oci.RemoteOptions{PlainHTTP: plainHTTP, InsecureRegistries: insecure})
			if err != nil {
				return err
			}
			if spec.Name == "" {
				spec.Name = argv0
			}
			engine, err := runtime.NewEngine(runtime.Options{CacheDir: cacheDir})
			if err != nil {
				return err
			}
			defer engine.Close()
			var prog *runtime.Program
			if file != "" {
				// An unchanged file with a cached artifact is not even read.
				prog, err = engine.LoadFile(ctx, file) // "load FILE: …"
			} else if prog, err = engine.Load(ctx, wasm, digest); err != nil {
				err = fmt.Errorf("load %s: %w", args[0], err)
			}
			if err != nil {
				return err
			}
			res, err := prog.Run(ctx, spec)
			if err != nil {
				return fmt.Errorf("run %s: %w", args[0], err)
			}
			switch {
			case res.ExitCode == 0:
				return nil
			case res.Reason == runtime.ReasonKilled && ctx.Err() != nil: // SIGINT/SIGTERM
				return &exitError{code: 130, err: errors.New("interrupted")}
			case res.Reason == runtime.ReasonError && res.ExitCode != runtime.ExitCodeTrap:
				return &exitError{code: res.ExitCode, err: fmt.Errorf("guest exited with code %d", res.ExitCode)}
			}
			return &exitError{code: res.ExitCode, err: fmt.Errorf("%s: %s", res.Reason, res.Message)}
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&env, "env", "e", nil, "set an environment variable for the guest: `K=V` (K alone passes wasilet's own value); repeatable")
	f.StringArrayVar(&dirs, "dir", nil, "preopen a host directory: `HOST[:GUEST[:ro]]` (GUEST defaults to HOST); repeatable")
	f.StringVar(&memory, "memory", "", "cap the guest's linear memory, e.g. 64Mi (default: no cap)")
	f.DurationVar(&timeout, "timeout", 0, "stop the guest after this long, e.g. 5s (default: none)")
	f.StringVar(&cacheDir, "cache-dir", "", `compiled-code cache (default: $XDG_CACHE_HOME/wasilet/compiled; "none" disables it)`)
	f.StringVar(&name, "argv0", "", "argv[0] for the guest (default: the file or repository name)")
	f.StringVar(&storeDir, "store", "", "OCI store for references (default: the one 'wasilet pull' uses)")
	f.BoolVar(&plainHTTP, "plain-http", false, "pull references over plain HTTP")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry (host[:port]) reached over plain HTTP; repeatable")
	return cmd
}

// loadWasm finds FILE (returned as file, for Engine.LoadFile), or pulls
// REF when target is not an existing file (its bytes and digest). It also
// returns the default argv[0].
func loadWasm(ctx context.Context, cmd *cobra.Command, target, storeDir string, remote oci.RemoteOptions) (file string, wasm []byte, digest, argv0 string, err error) {
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.IsDir():
		return "", nil, "", "", fmt.Errorf("%s is a directory, not a wasm file", target)
	case err == nil:
		return target, nil, "", filepath.Base(target), nil
	case looksLikePath(target):
		return "", nil, "", "", err
	}
	wasm, digest, argv0, err = pullWasm(ctx, cmd, target, storeDir, remote)
	return "", wasm, digest, argv0, err
}

// pullWasm pulls REF into the local store and reads its Wasm layer.
func pullWasm(ctx context.Context, cmd *cobra.Command, target, storeDir string, remote oci.RemoteOptions) ([]byte, string, string, error) {
	ref, err := oci.ParseReference(target)
	if err != nil {
		return nil, "", "", fmt.Errorf("%s is neither a file nor an OCI reference: %w", target, err)
	}
	if storeDir == "" {
		if storeDir, err = oci.DefaultStoreDir(); err != nil {
			return nil, "", "", err
		}
	}
	store, err := oci.NewStore(storeDir)
	if err != nil {
		return nil, "", "", err
	}
	defer store.Close()
	opts := oci.PullOptions{Policy: oci.PullIfNotPresent, Remote: remote}
	if isTerminal(cmd.ErrOrStderr()) {
		opts.Progress = oci.NewProgressPrinter(cmd.ErrOrStderr(), true, "pull").Report
	}
	a, err := store.Pull(ctx, target, opts)
	if err != nil {
		return nil, "", "", err
	}
	wasm, err := a.ReadWasm()
	if err != nil {
		return nil, "", "", fmt.Errorf("read %s: %w", target, err)
	}
	return wasm, a.Layer.Digest.String(), path.Base(ref.Repository), nil
}

// looksLikePath is true for targets meant as files (./x, /x, x.wasm), so a
// missing file is reported as such rather than as a bad reference.
func looksLikePath(s string) bool {
	return strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") || strings.HasSuffix(s, ".wasm")
}

func parseEnvFlags(flags []string) ([]string, error) {
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

func parseDirFlags(flags []string) ([]runtime.Mount, error) {
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

func defaultCompiledCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "wasilet", "compiled")
}
