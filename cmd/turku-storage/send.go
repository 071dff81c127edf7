package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/transfer"
)

func newSendCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "send MACHINE",
		Short: "Write a machine's whole history as a stream, to move it to another storage unit",
		Long: `Writes every snapshot of every source of MACHINE (a UUID, the
ENV-SERVICE-UNIT link name or a unit name), with their .json files, the
latest links and the hard links between snapshots, as one stream with a
SHA-256 checksum at its end, to standard output or to FILE (-o). Another
storage unit reads it with "turku-storage receive":

    turku-storage send web1 | ssh unit2 turku-storage receive

The machine's lock is held while it is sent, so no backup of it runs
meanwhile. Nothing here changes; remove the machine from this unit once
the receiving unit has it (docs/operations.md, "Moving a machine to
another unit").`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeMachineSource(g, false)(cmd, args, toComplete)
		},
		RunE: g.withConfig(func(cmd *cobra.Command, args []string, log *slog.Logger, cfg *config.Config) error {
			uuid, _, err := backup.ResolveMachine(cfg.VarDir, args[0], daemon.RegisteredMachines(cfg))
			if err != nil {
				return err
			}
			m, err := backup.NewMachines(daemon.Offline(cfg, log).BackupOptions())
			if err != nil {
				return err
			}
			opts := transfer.SendOptions{Machines: m, Machine: uuid, Storage: cfg.Name, Logger: log}
			if out != "" {
				sent, err := transfer.SendFile(cmd.Context(), out, opts)
				if err == nil {
					sent.WriteText(g.stdout)
				}
				return err
			}
			if isTerminal(g.stdout) {
				return fmt.Errorf("not writing a transfer stream to a terminal: pipe it, or give -o FILE")
			}
			sent, err := transfer.Send(cmd.Context(), g.stdout, opts)
			if err == nil {
				sent.WriteText(g.stderr)
			}
			return err
		}),
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the stream to `FILE` (created when complete) instead of standard output")
	return cmd
}
