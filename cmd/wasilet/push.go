package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/wasilet/wasilet/oci"
)

func init() { register(newPushCommand) }

func newPushCommand() *cobra.Command {
	var (
		tags        []string
		annotations []string
		plainHTTP   bool
		insecure    []string
		source      string
		osName      string
		quiet       bool
	)
	cmd := &cobra.Command{
		Use:   "push FILE REF",
		Short: "Push a Wasm module or component to an OCI registry (CNCF Wasm artifact layout)",
		Long: `Push uploads FILE (a core module or a component) to REF (HOST[:PORT]/REPO[:TAG])
as a CNCF Wasm OCI artifact and prints the manifest digest on stdout.

Credentials come from the docker config file ($DOCKER_CONFIG/config.json or
~/.docker/config.json) and its credential helpers. Registries on loopback
addresses are reached over plain HTTP; use --plain-http or --insecure-registry
for others.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ann := map[string]string{}
			for _, a := range annotations {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return fmt.Errorf("--annotation %q: want KEY=VALUE: %w", a, errdefs.ErrInvalidArgument)
				}
				ann[k] = v
			}
			opts := oci.PushOptions{
				Remote:      oci.RemoteOptions{PlainHTTP: plainHTTP, InsecureRegistries: insecure},
				Tags:        tags,
				Annotations: ann,
				Source:      source,
				OS:          osName,
			}
			if !quiet {
				opts.Progress = oci.NewProgressPrinter(cmd.ErrOrStderr(), isTerminal(cmd.ErrOrStderr()), "push").Report
			}
			res, err := oci.Push(cmd.Context(), args[0], args[1], opts)
			if err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "pushed %s (%s, os %s) as %s\n", res.RepoDigest, res.Kind, res.OS, strings.Join(res.Tags, ", "))
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Manifest.Digest)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&tags, "tag", nil, "extra tag for the pushed manifest (repeatable)")
	f.StringArrayVar(&annotations, "annotation", nil, "manifest annotation KEY=VALUE (repeatable)")
	f.BoolVar(&plainHTTP, "plain-http", false, "talk plain HTTP to the registry")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry HOST[:PORT] reached over plain HTTP (repeatable)")
	f.StringVar(&source, "source", "", "source URL recorded as org.opencontainers.image.source")
	f.StringVar(&osName, "os", "", "config os (default: wasip2 for a component, wasip1 for a module)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the digest")
	return cmd
}

// isTerminal reports whether w is a terminal (a character device), which
// selects progress bars over plain lines.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
