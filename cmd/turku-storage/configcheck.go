package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective settings",
		Long: `Reads CONFIG_DIR/config.d, applies defaults and validates every key.

On success prints the effective configuration as JSON, with secrets masked,
and exits 0. On failure prints every problem, each naming the file and the
key (e.g. "config.d/10-volumes.yaml: volumes.default.path: required"), and
exits 1. Unknown keys are reported as warnings, not errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.stderrLogger()
			if err != nil {
				return err
			}
			cfg, err := g.load(log)
			if err != nil {
				return err
			}
			data, err := json.MarshalIndent(cfg.Redacted(), "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.stdout, "%s\n", data)
			return err
		},
	})
	return cmd
}
