package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
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

On success prints the effective configuration as JSON on stdout, with
secrets masked, then on stderr which file (or TURKU_STORAGE_* environment
variable) set each key, and exits 0. On failure prints every problem, each
naming the file and the key (e.g. "config.d/10-volumes.yaml:
volumes.default.path: required"), and exits 1. An unknown key close to a
known one is an error ("did you mean ssh_listen?"); other unknown keys are
warnings, and the old storage unit's authorized_keys_* are named as
ignored. Whatever serve would refuse at start is refused here too: a
listen address without a port number, a placeholder such as CHANGE-ME
(named with its line), a host key, CA file or TLS pair that does not load.

Then every volume is checked as serve checks it, writing nothing: a
volume that is missing, not a directory, not mounted (the marker serve
wrote on first use is gone) or read-only is named, with what is wrong,
and the command exits 1.`,
		Args: cobra.NoArgs,
		RunE: g.withConfig(func(_ *cobra.Command, _ []string, log *slog.Logger, cfg *config.Config) error {
			if err := cfg.WriteEffective(g.stdout); err != nil {
				return err
			}
			for _, w := range cfg.Ignored {
				log.Info("config: " + w)
			}
			cfg.WriteOrigins(g.stderr)
			// The volumes as serve would find them; nothing is written.
			var errs []error
			for _, h := range daemon.CheckVolumes(log, cfg.VarDir, cfg.Volumes, false) {
				errs = append(errs, fmt.Errorf("volumes.%s.path: %w", h.Volume, h.Err()))
			}
			return errors.Join(errs...)
		}),
	})
	return cmd
}

// withConfig is a command's RunE that loads the configuration, its
// warnings logged on stderr (loadWithLog), then runs fn with them.
func (g *globals) withConfig(fn func(cmd *cobra.Command, args []string, log *slog.Logger, cfg *config.Config) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		log, cfg, err := g.loadWithLog()
		if err != nil {
			return err
		}
		return fn(cmd, args, log, cfg)
	}
}
