package main

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/control"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON, watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what the running serve is doing now",
		Long: `Asks the running serve, through its control socket (control_socket),
what it is doing: connected agents (machine, unit, remote address, mode,
since when), running backups (source, elapsed time, bytes received through
the tunnel so far and their rate, files transferred so far: new or
changed ones, as rsync names them; unchanged files do not count), backups waiting for
a max_concurrent_backups slot, restore sessions with their ports, the last
key refresh, spooled reports, whether the unit is draining (published:
false in force), the sources whose last attempt failed (with
the failures in a row and the last error) and the volumes with their state
(ok, missing, not mounted, read-only), free space and inodes used.

On a terminal it prints a table, and --watch redraws it in place every
--interval until interrupted. Otherwise, or with --json, it prints one JSON
document.`,
		Args: cobra.NoArgs,
		RunE: g.withConfig(func(cmd *cobra.Command, _ []string, _ *slog.Logger, cfg *config.Config) error {
			if asJSON || !isTerminal(g.stdout) {
				st, err := control.GetStatus(cmd.Context(), cfg.ControlSocket)
				if err != nil {
					return err
				}
				return writeJSON(g, st)
			}
			return control.Show(cmd.Context(), cfg.ControlSocket, g.stdout, cfg.EmbeddedCoordinator(), watch, interval)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	cmd.Flags().BoolVar(&watch, "watch", false, "on a terminal, redraw every --interval until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often --watch redraws")
	return cmd
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
