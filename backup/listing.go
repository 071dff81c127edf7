package backup

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/turku-backup/turku-storage/internal/words"
)

// MachineSnapshots lists the snapshots of each source of the machine in
// dir (which `snapshots` names as machine), or of source only when it
// is not empty, by source.
func MachineSnapshots(dir, machine, source string, loc *time.Location) (map[string][]SnapshotEntry, error) {
	sources, err := ListSources(dir)
	if err != nil {
		return nil, err
	}
	if source != "" {
		if !slices.Contains(sources, source) {
			return nil, fmt.Errorf("machine %s: no source %q on this storage unit (sources: %s)", machine, source, words.Dash(strings.Join(sources, ", ")))
		}
		sources = []string{source}
	}
	out := map[string][]SnapshotEntry{}
	for _, src := range sources {
		snaps, err := ListSnapshots(dir, src, loc)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", src, err)
		}
		out[src] = Entries(snaps)
	}
	return out, nil
}

// WriteSnapshots prints MachineSnapshots' list as a table, finish times
// in loc.
func WriteSnapshots(w io.Writer, list map[string][]SnapshotEntry, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSNAPSHOT\tFINISHED\tBASE\tLATEST\tSIZE\tTRANSFERRED\tFILES\tDURATION")
	for _, src := range slices.Sorted(maps.Keys(list)) {
		for _, s := range list[src] {
			latest := ""
			if s.Latest {
				latest = "latest"
			}
			size, sent, files, took := "-", "-", "-", "-"
			if s.TransferStats != nil {
				size, sent, files = humanize.IBytes(uint64(s.TotalSize)), humanize.IBytes(uint64(s.TransferredSize)), fmt.Sprint(s.Files)
			}
			if s.DurationSeconds != nil {
				took = (time.Duration(*s.DurationSeconds * float64(time.Second))).Round(time.Second).String()
			}
			base := words.Dash(s.Base)
			if s.BaseDeleted {
				base = "(deleted) " + s.Base
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", src, s.Name, s.SyncFinish.In(loc).Format(time.RFC3339), base, latest,
				size, sent, files, took)
		}
	}
	return tw.Flush()
}

// WriteOverview prints Overview's list as a table, a row per source, ages
// at now.
func WriteOverview(w io.Writer, list []MachineOverview, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tNAMES\tSOURCE\tLATEST\tAGE\tSNAPSHOTS\tSPACE")
	for _, m := range list {
		names := words.Dash(strings.Join(m.Names, ","))
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
				space = humanize.IBytes(uint64(*src.UsageBytes))
			case src.Count > 0:
				space = "?"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.UUID, names, src.Name, words.Dash(src.Latest), age, src.Count, space)
		}
	}
	return tw.Flush()
}
