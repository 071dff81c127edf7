package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/history"
)

func newLogsCmd(g *globals) *cobra.Command {
	var limit int
	var asJSON, failedOnly bool
	cmd := &cobra.Command{
		Use:   "logs [MACHINE [SOURCE]]",
		Short: "Show the backup history: every attempt, failed ones included",
		Long: `Prints this storage unit's backup history, newest first: when each source
backup ended, the machine's unit, the source, ok or failed (with the number
of failures in a row), the snapshot, the duration, what rsync transferred
and, indented, the report's summary.

It reads VAR_DIR/history, which serve appends to after every attempt
whether the API is turku-api or the built-in coordinator, and which
survives restarts (a bounded file per machine). It runs without serve.
MACHINE is a UUID, an ENV-SERVICE-UNIT name or a unit name.`,
		Args:              cobra.MaximumNArgs(2),
		ValidArgsFunction: completeMachineSource(g, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit must be at least 1 (got %d)", limit)
			}
			_, cfg, err := g.loadWithLog()
			if err != nil {
				return err
			}
			store := history.New(daemon.HistoryDir(cfg))
			q := history.Query{Failed: failedOnly, Limit: limit}
			if len(args) > 0 {
				q.Machine, err = store.FindMachine(args[0], func(name string) (string, error) {
					uuid, _, err := backup.ResolveMachine(cfg.VarDir, name, daemon.RegisteredMachines(cfg))
					return uuid, err
				})
				if err != nil {
					return err
				}
			}
			if len(args) == 2 {
				q.Source = args[1]
			}
			entries, err := store.Query(q)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g, entries)
			}
			return history.WriteEntries(g.stdout, entries, cfg.Location)
		},
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", 50, "at most this many entries, newest first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&failedOnly, "failed", false, "only failed attempts")
	return cmd
}
