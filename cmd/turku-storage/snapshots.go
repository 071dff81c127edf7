package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/internal/words"
)

func newSnapshotsCmd(g *globals) *cobra.Command {
	var asJSON, du bool
	cmd := &cobra.Command{
		Use:   "snapshots [MACHINE [SOURCE]]",
		Short: "List machines, sources and snapshots on this storage unit",
		Long: `Without arguments, gives the overview: every machine (VAR_DIR/machines)
with its UUID and name links, each source's newest snapshot, its age and
how many there are, and the space its snapshots take, each file counted
once however many snapshots link to it ("?" until known: see --du; --json:
every snapshot of every machine). With MACHINE (a UUID, or the
ENV-SERVICE-UNIT link name), lists each source's snapshots; with SOURCE,
only that source's. Each snapshot shows its name, finish time, base
snapshot ("(deleted) NAME" once retention removed it: the snapshot is
whole all the same), whether it is "latest", and its transfer's figures: the source's
total size, what was sent (the data the snapshot added), the number of
files and how long rsync ran ("-" for snapshots written without them).
--json prints the same for scripts.

--du (overview only) first counts the space of every machine by walking
its snapshots, which reads every inode and takes long on a large unit;
the result is kept, and backups and retention keep it up to date from
then on. A machine whose backup is running is skipped.`,
		Args:              cobra.MaximumNArgs(2),
		ValidArgsFunction: completeMachineSource(g, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cfg, err := g.loadWithLog()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				return listMachines(cmd.Context(), g, cfg.VarDir, cfg.LockDir, cfg.Location, asJSON, du)
			}
			if du {
				return fmt.Errorf("--du counts every machine: give no MACHINE")
			}
			return listSnapshots(g, cfg, args, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&du, "du", false, "count every machine's snapshot space by walking its snapshots first (slow)")
	return cmd
}

// listSnapshots prints the snapshots of the machine args[0] names: of
// every source, or of args[1].
func listSnapshots(g *globals, cfg *config.Config, args []string, asJSON bool) error {
	_, dir, err := backup.ResolveMachine(cfg.VarDir, args[0], registeredMachines(cfg))
	if err != nil {
		return err
	}
	sources, err := backup.ListSources(dir)
	if err != nil {
		return err
	}
	if len(args) == 2 {
		if !slices.Contains(sources, args[1]) {
			return fmt.Errorf("machine %s: no source %q on this storage unit (sources: %s)", args[0], args[1], dash(strings.Join(sources, ", ")))
		}
		sources = []string{args[1]}
	}
	out := map[string][]backup.SnapshotEntry{}
	for _, src := range sources {
		snaps, err := backup.ListSnapshots(dir, src, cfg.Location)
		if err != nil {
			return fmt.Errorf("source %s: %w", src, err)
		}
		out[src] = backup.Entries(snaps)
	}
	if asJSON {
		return writeJSON(g, out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSNAPSHOT\tFINISHED\tBASE\tLATEST\tSIZE\tTRANSFERRED\tFILES\tDURATION")
	for _, src := range sources {
		for _, s := range out[src] {
			latest := ""
			if s.Latest {
				latest = "latest"
			}
			size, sent, files, took := "-", "-", "-", "-"
			if s.TransferStats != nil {
				size, sent, files = sizeText(s.TotalSize), sizeText(s.TransferredSize), fmt.Sprint(s.Files)
			}
			if s.DurationSeconds != nil {
				took = (time.Duration(*s.DurationSeconds * float64(time.Second))).Round(time.Second).String()
			}
			base := dash(s.Base)
			if s.BaseDeleted {
				base = "(deleted) " + s.Base
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", src, s.Name, s.SyncFinish.In(cfg.Location).Format(time.RFC3339), base, latest,
				size, sent, files, took)
		}
	}
	return tw.Flush()
}

// sizeText is a byte count for people: 1023 B, 1.5 KiB, 2.0 GiB.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// listMachines prints the overview (backup.Overview).
func listMachines(ctx context.Context, g *globals, varDir, lockDir string, loc *time.Location, asJSON, du bool) error {
	list, err := backup.Overview(ctx, varDir, lockDir, loc, du, func(uuid string, err error) {
		fmt.Fprintf(g.stderr, "machine %s: %v\n", uuid, err)
	})
	if err != nil {
		return err
	}
	orphaned := orphansOnDisk(varDir)
	for i := range list {
		list[i].OrphanedSince = orphaned[list[i].UUID]
	}
	if asJSON {
		return writeJSON(g, list)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tNAMES\tSOURCE\tLATEST\tAGE\tSNAPSHOTS\tSPACE")
	for _, m := range list {
		names := dash(strings.Join(m.Names, ","))
		if m.OrphanedSince != nil {
			names += " [orphan for " + words.Age(now.Sub(*m.OrphanedSince)) + "]"
		}
		if m.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t%s\t-\t-\t-\n", m.UUID, names, "error: "+m.Error)
			continue
		}
		if len(m.Sources) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t0\t-\n", m.UUID, names)
		}
		for _, src := range m.Sources {
			age := "-"
			if src.Finished != nil {
				age = words.Age(now.Sub(*src.Finished))
			}
			space := "-"
			switch {
			case src.UsageBytes != nil:
				space = sizeText(*src.UsageBytes)
			case src.Count > 0:
				space = "?"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.UUID, names, src.Name, dash(src.Latest), age, src.Count, space)
		}
	}
	return tw.Flush()
}

func writeJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
