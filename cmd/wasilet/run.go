package main

import (
	"context"
	"fmt"
	"path"

	"github.com/spf13/cobra"

	"github.com/wasilet/wasilet/internal/runcli"
	"github.com/wasilet/wasilet/oci"
)

func init() { register(newRunCommand) }

// newRunCommand is the cobra face of package runcli, which also runs a local
// file before this binary's other packages initialize (cmd/wasilet/internal/early);
// the verb adds what needs them: help, flag errors and pulling references.
func newRunCommand() *cobra.Command {
	var flags runcli.Flags
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
			stdio := runcli.Stdio{In: cmd.InOrStdin(), Out: cmd.OutOrStdout(), Err: cmd.ErrOrStderr()}
			return runcli.Run(ctx, &flags, args, stdio, func(ctx context.Context, ref string, f *runcli.Flags) (runcli.Pulled, error) {
				return pullWasm(ctx, cmd, ref, f.Store, oci.RemoteOptions{PlainHTTP: f.PlainHTTP, InsecureRegistries: f.Insecure})
			})
		},
	}
	for _, f := range flags.List() {
		cmd.Flags().VarP(f.Value, f.Name, f.Short, f.Usage)
		if f.Bool {
			cmd.Flags().Lookup(f.Name).NoOptDefVal = "true"
		}
	}
	return cmd
}

// pullWasm pulls REF into the local store and reads its Wasm layer.
func pullWasm(ctx context.Context, cmd *cobra.Command, target, storeDir string, remote oci.RemoteOptions) (runcli.Pulled, error) {
	ref, err := oci.ParseReference(target)
	if err != nil {
		return runcli.Pulled{}, fmt.Errorf("%s is neither a file nor an OCI reference: %w", target, err)
	}
	if storeDir == "" {
		if storeDir, err = oci.DefaultStoreDir(); err != nil {
			return runcli.Pulled{}, err
		}
	}
	store, err := oci.NewStore(storeDir)
	if err != nil {
		return runcli.Pulled{}, err
	}
	defer store.Close()
	opts := oci.PullOptions{Policy: oci.PullIfNotPresent, Remote: remote}
	if isTerminal(cmd.ErrOrStderr()) {
		opts.Progress = oci.NewProgressPrinter(cmd.ErrOrStderr(), true, "pull").Report
	}
	a, err := store.Pull(ctx, target, opts)
	if err != nil {
		return runcli.Pulled{}, err
	}
	wasm, err := a.ReadWasm()
	if err != nil {
		return runcli.Pulled{}, fmt.Errorf("read %s: %w", target, err)
	}
	return runcli.Pulled{Wasm: wasm, Digest: a.Layer.Digest.String(), Argv0: path.Base(ref.Repository)}, nil
}
