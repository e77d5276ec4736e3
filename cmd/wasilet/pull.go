package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wasilet/wasilet/oci"
)

func init() { register(newPullCommand) }

func newPullCommand() *cobra.Command {
	var (
		storeDir  string
		output    string
		plainHTTP bool
		insecure  []string
		policy    string
		platforms []string
		quiet     bool
	)
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull a Wasm artifact into the local store",
		Long: `Pull fetches REF (HOST[:PORT]/REPO[:TAG|@DIGEST]) into a content-addressed
store, verifying every blob against its digest, and prints the digest, the
media types and where the Wasm file is. Accepted layouts: CNCF Wasm artifact,
wasm-to-oci/Krustlet, runwasi component layer, and image indexes with a
wasip1/wasip2 wasm platform.

Credentials come from the docker config file ($DOCKER_CONFIG/config.json or
~/.docker/config.json) and its credential helpers. Registries on loopback
addresses are reached over plain HTTP; use --plain-http or --insecure-registry
for others.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if storeDir == "" {
				d, err := oci.DefaultStoreDir()
				if err != nil {
					return err
				}
				storeDir = d
			}
			store, err := oci.NewStore(storeDir)
			if err != nil {
				return err
			}
			defer store.Close()
			opts := oci.PullOptions{
				Policy:    oci.PullPolicy(policy),
				Remote:    oci.RemoteOptions{PlainHTTP: plainHTTP, InsecureRegistries: insecure},
				Platforms: platforms,
			}
			if !quiet {
				opts.Progress = oci.NewProgressPrinter(cmd.ErrOrStderr(), isTerminal(cmd.ErrOrStderr()), "pull").Report
			}
			a, err := store.Pull(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			file := a.Path
			if output != "" {
				if err := a.WriteFile(output); err != nil {
					return err
				}
				if file, err = filepath.Abs(output); err != nil {
					return err
				}
			}
			if quiet {
				fmt.Fprintln(cmd.OutOrStdout(), a.Digest)
				return nil
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 1, ' ', 0)
			fmt.Fprintf(w, "Digest:\t%s\n", a.Digest)
			fmt.Fprintf(w, "Reference:\t%s\n", a.RepoDigest)
			if a.Manifest.Digest != a.Digest {
				fmt.Fprintf(w, "Index:\t%s\n", a.MediaType)
			}
			fmt.Fprintf(w, "Manifest:\t%s %s\n", a.Manifest.MediaType, a.Manifest.Digest)
			fmt.Fprintf(w, "Format:\t%s\n", a.Format)
			fmt.Fprintf(w, "Config:\t%s\n", a.ConfigMediaType)
			fmt.Fprintf(w, "Layer:\t%s %s (%d bytes)\n", a.Layer.MediaType, a.Layer.Digest, a.Layer.Size)
			if a.Platform != nil {
				fmt.Fprintf(w, "Platform:\t%s/%s\n", a.Platform.OS, a.Platform.Architecture)
			}
			fmt.Fprintf(w, "Kind:\t%s\n", a.Kind)
			fmt.Fprintf(w, "Cached:\t%t\n", a.Cached)
			fmt.Fprintf(w, "File:\t%s\n", file)
			if output != "" {
				fmt.Fprintf(w, "Store:\t%s\n", a.Path)
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&storeDir, "store", "", "store directory (default $XDG_CACHE_HOME/wasilet/oci or ~/.cache/wasilet/oci)")
	f.StringVarP(&output, "output", "o", "", "also write the Wasm file to this path")
	f.BoolVar(&plainHTTP, "plain-http", false, "talk plain HTTP to the registry")
	f.StringArrayVar(&insecure, "insecure-registry", nil, "registry HOST[:PORT] reached over plain HTTP (repeatable)")
	f.StringVar(&policy, "policy", string(oci.PullAlways), "pull policy: Always, IfNotPresent or Never")
	f.StringSliceVar(&platforms, "platform-os", nil, "OS preference for image indexes (default wasip1,wasip2)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the digest")
	return cmd
}
