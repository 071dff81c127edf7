package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/daemon"
)

func newServeCmd(g *globals) *cobra.Command {
	var shutdownTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the storage unit: SSH server, API refresh and backups",
		Long: `Runs the storage unit daemon:

  - the embedded SSH server on ssh_listen (default :ssh_ping_port), which
    authenticates agents by the keys turku-api assigned to this storage unit;
  - a refresh of those keys (storage_update_config) every
    update_config_interval, and at once on SIGHUP; between refreshes and
    while the API is down, the keys cached in VAR_DIR/machines.json serve;
  - the backups agents ask for, into the configured volumes;
  - the built-in coordinator on coordinator_listen when no api_url is set.

SIGTERM or SIGINT stop accepting connections, let running backups finish
for up to --shutdown-timeout, then cancel them (the working tree is kept for
the next run and the failure is reported); a second SIGTERM or SIGINT
cancels them at once. SIGHUP re-reads the configuration (settings that need
a restart are named in the log and keep their running values) and
refreshes the keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), g, shutdownTimeout)
		},
	}
	cmd.Flags().DurationVar(&shutdownTimeout, "shutdown-timeout", 5*time.Minute, "how long running backups may finish after SIGTERM before they are cancelled")
	return cmd
}

func runServe(ctx context.Context, g *globals, shutdownTimeout time.Duration) error {
	daemon.SetGCPercent()
	boot, err := g.stderrLogger()
	if err != nil {
		return err
	}
	cfg, err := g.load(boot)
	if err != nil {
		return err
	}
	return daemon.Run(ctx, daemon.Options{
		Config:          cfg,
		ConfigDir:       g.configDir,
		Version:         versionString(),
		OpenLog:         g.daemonLogger,
		ShutdownTimeout: shutdownTimeout,
		Signals:         g.signals,
		OnListen:        g.onListen,
		OnMetrics:       g.onMetrics,
		OnWeb:           g.onWeb,
	})
}
