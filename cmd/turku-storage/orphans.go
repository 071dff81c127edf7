package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
)

func newOrphansCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "orphans",
		Short: "List machines with data here that turku-api no longer assigns here",
		Long: `Lists the orphans: machines with backups on this storage unit that the
coordinator no longer assigns here (moved to another unit, or deactivated),
as serve's last key refresh found them, with when it first found each one
unassigned and the space its snapshots take ("?" until counted: see
snapshots --du). Orphans are not backed up here any more and are never
counted as stale sources; check warns about them after orphan_warn_after.

Nothing of theirs is deleted unless the operator runs "orphans purge" or
sets orphan_expiry.`,
		Args: cobra.NoArgs,
		RunE: g.withConfig(func(_ *cobra.Command, _ []string, _ *slog.Logger, cfg *config.Config) error {
			orphans, err := backup.OrphansIn(cfg.VarDir)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g, append([]backup.Orphan{}, orphans...))
			}
			return backup.WriteOrphans(g.stdout, orphans, time.Now())
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(newOrphansPurgeCmd(g))
	return cmd
}

func newOrphansPurgeCmd(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge MACHINE",
		Short: "Delete one machine that is no longer assigned here, with all its backups",
		Long: `Deletes MACHINE (a UUID, or its ENV-SERVICE-UNIT link name) from this
storage unit: its directory on its volume, with every snapshot, and its
links in VAR_DIR/machines. Nothing else is touched: not other machines,
not its backup history.

It refuses a machine the key cache (the last key refresh) lists as assigned
here, or when the key cache cannot be read; a machine whose link does not
lead to MACHINE-UUID directly on a configured volume, or on a volume
that is missing, not mounted or read-only; and a machine whose backup
runs (it holds the machine lock while it deletes). Symbolic links
inside the machine directory are removed, never followed.

It asks for confirmation on a terminal; --yes confirms beforehand.
Without a terminal and without --yes it refuses.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeMachineSource(g, false),
		RunE: g.withConfig(func(_ *cobra.Command, args []string, _ *slog.Logger, cfg *config.Config) error {
			return purgeOrphan(g, cfg, args[0], yes)
		}),
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "delete without asking")
	return cmd
}

// errNotConfirmed is why purge deleted nothing without --yes.
var errNotConfirmed = errors.New("not confirmed; nothing deleted")

func purgeOrphan(g *globals, cfg *config.Config, name string, yes bool) error {
	uuid, _, err := backup.ResolveMachine(cfg.VarDir, name, daemon.RegisteredMachines(cfg))
	if err != nil {
		return err
	}
	var confirm func(string) error
	if !yes {
		confirm = func(what string) error { return confirmPurge(g, uuid, what) }
	}
	p, err := backup.Purge(daemon.PurgeOptions(cfg), uuid, confirm)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(g.stdout, p)
	return err
}

// confirmPurge asks on the terminal whether to delete machine uuid,
// described as what; without a terminal it refuses.
func confirmPurge(g *globals, uuid, what string) error {
	in, ok := g.stdin.(*os.File)
	if !ok || !isTerminal(in) || !isTerminal(g.stdout) {
		return fmt.Errorf("machine %s: no terminal to confirm on, and no --yes: %w", uuid, errNotConfirmed)
	}
	fmt.Fprintf(g.stdout, "Delete machine %s and every backup of it from this storage unit?\nType the machine's UUID to confirm: ", what)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if strings.TrimSpace(line) != uuid {
		return fmt.Errorf("machine %s: %w", uuid, errNotConfirmed)
	}
	return nil
}
