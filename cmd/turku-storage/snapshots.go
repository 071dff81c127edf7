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
	"github.com/turku-backup/turku-storage/internal/words"
	"github.com/turku-backup/turku-storage/rsync"
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
			out := map[string][]snapshotJSON{}
			for _, src := range sources {
				snaps, err := backup.ListSnapshots(dir, src, cfg.Location)
				if err != nil {
					return fmt.Errorf("source %s: %w", src, err)
				}
				list := []snapshotJSON{}
				for _, s := range snaps {
					list = append(list, newSnapshotJSON(s))
				}
				markDeletedBases(list)
				out[src] = list
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
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&du, "du", false, "count every machine's snapshot space by walking its snapshots first (slow)")
	return cmd
}

// snapshotJSON is one snapshot; the transfer's figures (the keys of its
// .json) and the duration are left out when its .json has none.
type snapshotJSON struct {
	Name       string    `json:"name"`
	SyncFinish time.Time `json:"sync_finish"`
	Base       string    `json:"base,omitempty"`
	// BaseDeleted reports that Base is no longer on disk (retention
	// removed it); the snapshot itself is whole, its files are its own.
	BaseDeleted bool `json:"base_deleted,omitempty"`
	Latest      bool `json:"latest"`
	*rsync.TransferStats
	DurationSeconds *float64 `json:"duration_seconds,omitempty"`
}

func newSnapshotJSON(s backup.Snapshot) snapshotJSON {
	j := snapshotJSON{Name: s.Name, SyncFinish: s.SyncFinish, Base: s.Base, Latest: s.Latest, TransferStats: s.Stats}
	if d := s.Duration(); s.Stats != nil && !s.SyncBegin.IsZero() {
		secs := d.Seconds()
		j.DurationSeconds = &secs
	}
	return j
}

// markDeletedBases marks the snapshots of one source whose base is not
// among them any more.
func markDeletedBases(list []snapshotJSON) {
	names := map[string]bool{}
	for _, s := range list {
		names[s.Name] = true
	}
	for i := range list {
		list[i].BaseDeleted = list[i].Base != "" && !names[list[i].Base]
	}
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

// machineOverview is one machine in `snapshots` without arguments.
type machineOverview struct {
	UUID  string   `json:"uuid"`
	Path  string   `json:"path"`
	Names []string `json:"names"`
	// UsageBytes is the space its snapshots take (backup.MachineUsage);
	// with UsageKnown false, only that of the sources whose figure is
	// known.
	UsageBytes int64            `json:"usage_bytes"`
	UsageKnown bool             `json:"usage_known"`
	Sources    []sourceOverview `json:"sources"`
	Error      string           `json:"error,omitempty"`
}

type sourceOverview struct {
	Name string `json:"name"`
	// Latest is the newest snapshot's name, "" if it has none.
	Latest   string     `json:"latest"`
	Finished *time.Time `json:"finished,omitempty"`
	Count    int        `json:"count"`
	// UsageBytes is the space of its snapshots, nil when unknown or it
	// has none (snapshot mode "none").
	UsageBytes *int64         `json:"usage_bytes,omitempty"`
	Snapshots  []snapshotJSON `json:"snapshots"`
}

// listMachines is the overview: every machine (UUID, name links), each
// source with its newest snapshot, that snapshot's age, the count and the
// space its snapshots take. With du, that space is first counted by
// walking every machine's snapshots (backup.MeasureUsage).
func listMachines(ctx context.Context, g *globals, varDir, lockDir string, loc *time.Location, asJSON, du bool) error {
	machines, err := backup.Inventory(ctx, varDir, loc)
	if err != nil {
		return err
	}
	list := make([]machineOverview, 0, len(machines))
	for _, m := range machines {
		mo := machineOverview{UUID: m.UUID, Path: m.Dir, Names: m.Names, Sources: []sourceOverview{}}
		if m.Err != nil {
			mo.Error = m.Err.Error()
		}
		var usage backup.SnapshotUsage
		if m.Err == nil {
			if du {
				if err := ctx.Err(); err != nil {
					return err
				}
				if _, err := backup.MeasureUsage(lockDir, m.UUID, m.Dir); err != nil {
					fmt.Fprintf(g.stderr, "machine %s: space not counted: %v\n", m.UUID, err)
				}
			}
			if usage, err = backup.MachineUsage(m.Dir); err != nil {
				mo.Error = err.Error()
			}
			mo.UsageBytes, mo.UsageKnown = usage.Bytes, usage.Known
		}
		for _, src := range m.Sources {
			so := sourceOverview{Name: src.Name, Count: len(src.Snapshots), Snapshots: []snapshotJSON{}}
			if b, ok := usage.Sources[src.Name]; ok && b >= 0 {
				so.UsageBytes = &b
			}
			for _, sn := range src.Snapshots {
				so.Snapshots = append(so.Snapshots, newSnapshotJSON(sn))
			}
			markDeletedBases(so.Snapshots)
			if n := src.Newest(); n != nil {
				so.Latest = n.Name
				so.Finished = &n.SyncFinish
			}
			mo.Sources = append(mo.Sources, so)
		}
		list = append(list, mo)
	}
	if asJSON {
		return writeJSON(g, list)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tNAMES\tSOURCE\tLATEST\tAGE\tSNAPSHOTS\tSPACE")
	for _, m := range list {
		names := dash(strings.Join(m.Names, ","))
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
