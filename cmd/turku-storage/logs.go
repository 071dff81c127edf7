package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/internal/words"
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
			entries, err := readLogs(cfg, args)
			if err != nil {
				return err
			}
			if failedOnly {
				entries = slices.DeleteFunc(entries, func(e history.Entry) bool { return e.Success })
			}
			entries = entries[:min(limit, len(entries))]
			if asJSON {
				return writeJSON(g, entries)
			}
			return printLogs(g, cfg, entries)
		},
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", 50, "at most this many entries, newest first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&failedOnly, "failed", false, "only failed attempts")
	return cmd
}

// readLogs returns the attempts of every machine, or of the machine (and
// source) args name, newest first.
func readLogs(cfg *config.Config, args []string) ([]history.Entry, error) {
	store := history.New(historyDir(cfg))
	var machines []string
	source := ""
	if len(args) > 0 {
		uuid, err := logsMachine(cfg, store, args[0])
		if err != nil {
			return nil, err
		}
		machines = []string{uuid}
	}
	if len(args) == 2 {
		source = args[1]
	}
	return store.Entries(machines, source)
}

// logsMachine resolves MACHINE: a UUID with a history, a name the machine
// links or the key cache know, or a unit name recorded in the history.
func logsMachine(cfg *config.Config, store *history.Store, name string) (string, error) {
	machines, err := store.Machines()
	if err != nil {
		return "", err
	}
	if slices.Contains(machines, name) {
		return name, nil
	}
	if uuid, _, err := backup.ResolveMachine(cfg.VarDir, name, registeredMachines(cfg)); err == nil {
		return uuid, nil
	}
	found, err := store.WithUnit(name)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("machine %q: no backup history on this storage unit (not a UUID, name or unit name it knows)", name)
	}
	return "", fmt.Errorf("machine %q: the unit name of several machines (%s): give the UUID", name, strings.Join(found, ", "))
}

// printLogs writes entries as a table under a header row, a failure's
// summary indented under its row. Nothing at all when there are none.
func printLogs(g *globals, cfg *config.Config, entries []history.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	// The rows are aligned on their own, then the summaries put between
	// them: a line without cells would restart tabwriter's columns.
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FINISHED\tUNIT\tSOURCE\tRESULT\tSNAPSHOT\tDURATION\tTRANSFERRED")
	for _, e := range entries {
		status := "ok"
		if !e.Success {
			status = fmt.Sprintf("failed(%d)", e.Failures)
		}
		size := "-"
		// Sizes come from rsync's --stats: none for a failure, nor for
		// attempts recorded before they were kept.
		if e.Success && (e.TotalSize > 0 || e.BytesReceived > 0) {
			size = fmt.Sprintf("%s of %s, %s", humanize.IBytes(uint64(e.TransferredSize)), humanize.IBytes(uint64(e.TotalSize)), words.Count(int(e.Files), "file", ""))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.End.In(cfg.Location).Format(time.RFC3339), dash(e.Unit), e.Source, status,
			dash(e.Snapshot), e.Duration().Round(time.Second), size)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rows := strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n")
	fmt.Fprintln(g.stdout, rows[0])
	for i, e := range entries {
		fmt.Fprintln(g.stdout, rows[i+1])
		if !e.Success {
			for _, line := range strings.Split(strings.TrimRight(e.Summary, "\n"), "\n") {
				if line != "" {
					fmt.Fprintf(g.stdout, "    %s\n", line)
				}
			}
		}
	}
	return nil
}
