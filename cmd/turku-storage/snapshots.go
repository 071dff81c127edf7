package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
)

func newSnapshotsCmd(g *globals) *cobra.Command {
	var asJSON bool
	var o backup.OverviewOptions
	cmd := &cobra.Command{
		Use:   "snapshots [MACHINE [SOURCE]]",
		Short: "List machines, sources and snapshots on this storage unit",
		Long: `Without arguments, gives the overview: every machine (VAR_DIR/machines)
with its UUID and name links, each source's newest snapshot, its age and
how many there are, and the space its snapshots take, each file counted
once however many snapshots link to it ("?" until known: see --du). It
comes from the snapshot index (VAR_DIR/history/` + backup.IndexFile + `),
brought up to date by reading only the directories that changed since;
--rescan reads them all; --json reads every snapshot of every machine.
With MACHINE (a UUID, or the ENV-SERVICE-UNIT link name), lists each
source's snapshots; with SOURCE, only that source's. Each snapshot shows
its name, finish time, base snapshot ("(deleted) NAME" once retention
removed it: the snapshot is whole all the same), whether it is "latest",
and its transfer's figures: the source's total size, what was sent (the
data the snapshot added), the number of files and how long rsync ran
("-" for snapshots written without them). --json prints the same for
scripts.

--du (overview only) first counts the space of every machine by walking
its snapshots, which reads every inode and takes long on a large unit;
the result is kept, and backups and retention keep it up to date from
then on. A machine whose backup is running is skipped.`,
		Args:              cobra.MaximumNArgs(2),
		ValidArgsFunction: completeMachineSource(g, false),
		RunE: g.withConfig(func(cmd *cobra.Command, args []string, log *slog.Logger, cfg *config.Config) error {
			if len(args) == 0 {
				o.LockDir, o.Location, o.Snapshots, o.Log = cfg.LockDir, cfg.Location, asJSON, log
				o.Skipped = func(uuid string, err error) { fmt.Fprintf(g.stderr, "machine %s: %v\n", uuid, err) }
				list, err := backup.Overview(cmd.Context(), cfg.VarDir, o)
				return printList(g, list, err, asJSON, func() error { return backup.WriteOverview(g.stdout, list, time.Now()) })
			}
			if o.Du || o.Rescan {
				return fmt.Errorf("--du and --rescan are for the overview of every machine: give no MACHINE")
			}
			_, dir, err := backup.ResolveMachine(cfg.VarDir, args[0], daemon.RegisteredMachines(cfg))
			if err != nil {
				return err
			}
			list, err := backup.MachineSnapshots(dir, args[0], append(args, "")[1], cfg.Location)
			return printList(g, list, err, asJSON, func() error { return backup.WriteSnapshots(g.stdout, list, cfg.Location) })
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&o.Du, "du", false, "count every machine's snapshot space by walking its snapshots first (slow)")
	cmd.Flags().BoolVar(&o.Rescan, "rescan", false, "rebuild the snapshot index from every machine directory")
	return cmd
}
