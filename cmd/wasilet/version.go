package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wasilet/wasilet/internal/version"
)

func init() { register(newVersionCommand) }

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print wasilet's version, commit, Go and wasmtime versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := version.Get()
			fmt.Fprintf(cmd.OutOrStdout(), "wasilet %s\ncommit:   %s\ngo:       %s\nwasmtime: %s\nplatform: %s\n",
				i.Version, i.Commit, i.Go, i.Wasmtime, i.Platform)
			return nil
		},
	}
}
