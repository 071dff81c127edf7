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
)

func newSnapshotsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "snapshots [MACHINE [SOURCE]]",
		Short: "List machines, sources and snapshots on this storage unit",
		Long: `Without arguments, gives the overview: every machine (VAR_DIR/machines)
with its UUID and name links, each source's newest snapshot, its age and
how many there are (--json: every snapshot of every machine). With MACHINE
(a UUID, or the ENV-SERVICE-UNIT link name), lists each source's snapshots;
with SOURCE, only that source's. Each snapshot shows its name, finish time,
base snapshot and whether it is "latest". --json prints the same for
scripts.`,
		Args:              cobra.MaximumNArgs(2),
		ValidArgsFunction: completeMachineSource(g, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cfg, err := g.loadWithLog()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				return listMachines(cmd.Context(), g, cfg.VarDir, cfg.Location, asJSON)
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
					list = append(list, snapshotJSON{Name: s.Name, SyncFinish: s.SyncFinish, Base: s.Base, Latest: s.Latest})
				}
				out[src] = list
			}
			if asJSON {
				return writeJSON(g, out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tSNAPSHOT\tFINISHED\tBASE\tLATEST")
			for _, src := range sources {
				for _, s := range out[src] {
					latest := ""
					if s.Latest {
						latest = "latest"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", src, s.Name, s.SyncFinish.In(cfg.Location).Format(time.RFC3339), dash(s.Base), latest)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type snapshotJSON struct {
	Name       string    `json:"name"`
	SyncFinish time.Time `json:"sync_finish"`
	Base       string    `json:"base,omitempty"`
	Latest     bool      `json:"latest"`
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// machineOverview is one machine in `snapshots` without arguments.
type machineOverview struct {
	UUID    string           `json:"uuid"`
	Path    string           `json:"path"`
	Names   []string         `json:"names"`
	Sources []sourceOverview `json:"sources"`
	Error   string           `json:"error,omitempty"`
}

type sourceOverview struct {
	Name string `json:"name"`
	// Latest is the newest snapshot's name, "" if it has none.
	Latest    string         `json:"latest"`
	Finished  *time.Time     `json:"finished,omitempty"`
	Count     int            `json:"count"`
	Snapshots []snapshotJSON `json:"snapshots"`
}

// listMachines is the overview: every machine (UUID, name links), each
// source with its newest snapshot, that snapshot's age and the count.
func listMachines(ctx context.Context, g *globals, varDir string, loc *time.Location, asJSON bool) error {
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
		for _, src := range m.Sources {
			so := sourceOverview{Name: src.Name, Count: len(src.Snapshots), Snapshots: []snapshotJSON{}}
			for _, sn := range src.Snapshots {
				so.Snapshots = append(so.Snapshots, snapshotJSON{Name: sn.Name, SyncFinish: sn.SyncFinish, Base: sn.Base, Latest: sn.Latest})
			}
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
	fmt.Fprintln(tw, "MACHINE\tNAMES\tSOURCE\tLATEST\tAGE\tSNAPSHOTS")
	for _, m := range list {
		names := dash(strings.Join(m.Names, ","))
		if m.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t%s\t-\t-\n", m.UUID, names, "error: "+m.Error)
			continue
		}
		if len(m.Sources) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t0\n", m.UUID, names)
		}
		for _, src := range m.Sources {
			age := "-"
			if src.Finished != nil {
				age = roundAge(now.Sub(*src.Finished))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", m.UUID, names, src.Name, dash(src.Latest), age, src.Count)
		}
	}
	return tw.Flush()
}

func writeJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
