package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/transfer"
)

func newReceiveCmd(g *globals) *cobra.Command {
	var in string
	var sync bool
	cmd := &cobra.Command{
		Use:   "receive [MACHINE]",
		Short: "Read a machine sent by another storage unit onto a volume of this one",
		Long: `Reads a stream written by "turku-storage send" from standard input (or
FILE, -i) and puts the machine on the volume a first backup would have
chosen, with its VAR_DIR/machines link and name links. The machine is
written under a temporary name and renamed into place only once the whole
stream matched its SHA-256; a truncated or corrupt stream, an entry that
would leave the machine's directory, or a machine that already has data
here is refused, and nothing is left behind. With MACHINE (a UUID), a
stream holding another machine is refused.

The next backup of the machine on this unit is incremental on the
received latest snapshots. Like rsync and the backups, receive leaves
writing the data back to the kernel; --sync flushes the volume's
filesystem first, at the cost of waiting for everything dirty on it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: g.withConfig(func(cmd *cobra.Command, args []string, log *slog.Logger, cfg *config.Config) error {
			m, err := backup.NewMachines(daemon.Offline(cfg, log).BackupOptions())
			if err != nil {
				return err
			}
			opts := transfer.ReceiveOptions{Machines: m, Logger: log, Sync: sync}
			if len(args) == 1 {
				opts.Expect = args[0]
			}
			var r io.Reader = cmd.InOrStdin()
			if in != "" {
				f, err := os.Open(in)
				if err != nil {
					return fmt.Errorf("-i: %w", err)
				}
				defer f.Close()
				r = f
			} else if f, ok := r.(*os.File); ok && isTerminal(f) {
				return fmt.Errorf("not reading a transfer stream from a terminal: pipe one in, or give -i FILE")
			}
			got, err := transfer.Receive(cmd.Context(), r, opts)
			if err != nil {
				return err
			}
			got.WriteText(g.stdout)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&in, "input", "i", "", "read the stream from `FILE` instead of standard input")
	cmd.Flags().BoolVar(&sync, "sync", false, "flush the volume's filesystem (syncfs) before the machine is renamed into place")
	return cmd
}
