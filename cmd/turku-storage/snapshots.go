package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/registry"
)

func newSnapshotsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "snapshots [MACHINE [SOURCE]]",
		Short: "List machines, sources and snapshots on this storage unit",
		Long: `Without arguments, lists the machines (VAR_DIR/machines). With MACHINE
(a UUID, or the ENV-SERVICE-UNIT link name), lists each source's snapshots;
with SOURCE, only that source's. Each snapshot shows its name, finish time,
base snapshot and whether it is "latest". --json prints the same for
scripts.`,
		Args:              cobra.MaximumNArgs(2),
		ValidArgsFunction: completeMachineSource(g, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.stderrLogger()
			if err != nil {
				return err
			}
			cfg, err := g.load(log)
			if err != nil {
				return err
			}
			machinesDir := filepath.Join(cfg.VarDir, "machines")
			if len(args) == 0 {
				return listMachines(g, machinesDir, asJSON)
			}
			dir, err := machineDir(machinesDir, args[0], filepath.Join(cfg.VarDir, registry.CacheFile))
			if err != nil {
				return err
			}
			var sources []string
			if len(args) == 2 {
				sources = []string{args[1]}
			} else if sources, err = backup.ListSources(dir); err != nil {
				return err
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

// machineDir resolves a machine UUID, link name (ENV-SERVICE-UNIT) or, by
// the machine cache, a bare unit name to its directory under
// VAR_DIR/machines; the result is always one entry of that directory.
func machineDir(machinesDir, name, cachePath string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("machine %q: not a machine UUID or unit name", name)
	}
	p := filepath.Join(machinesDir, name)
	info, err := os.Stat(p)
	if err != nil {
		uuid, uerr := uuidForUnit(cachePath, name)
		if uerr != nil {
			return "", fmt.Errorf("machine %q: no such machine in %s: %w", name, machinesDir, uerr)
		}
		p = filepath.Join(machinesDir, uuid)
		if info, err = os.Stat(p); err != nil {
			return "", fmt.Errorf("machine %q (%s): no backups in %s yet", name, uuid, machinesDir)
		}
	}
	if !info.IsDir() {
		return "", fmt.Errorf("machine %q: %s is not a directory", name, p)
	}
	return p, nil
}

func listMachines(g *globals, machinesDir string, asJSON bool) error {
	entries, err := os.ReadDir(machinesDir)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	// UUID links point at machine directories; name links point at a UUID.
	type machine struct {
		UUID  string   `json:"uuid"`
		Path  string   `json:"path"`
		Names []string `json:"names"`
	}
	byUUID := map[string]*machine{}
	names := map[string][]string{}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(machinesDir, e.Name()))
		if err != nil {
			continue
		}
		if filepath.IsAbs(target) {
			byUUID[e.Name()] = &machine{UUID: e.Name(), Path: target, Names: []string{}}
		} else {
			names[target] = append(names[target], e.Name())
		}
	}
	list := []*machine{}
	for uuid, m := range byUUID {
		m.Names = append(m.Names, names[uuid]...)
		sort.Strings(m.Names)
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].UUID < list[j].UUID })
	if asJSON {
		return writeJSON(g, list)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tNAMES\tPATH")
	for _, m := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.UUID, dash(strings.Join(m.Names, ",")), m.Path)
	}
	return tw.Flush()
}

func writeJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// uuidForUnit finds the one machine with this unit name in the key cache.
func uuidForUnit(cachePath, unit string) (string, error) {
	c, err := registry.LoadCache(cachePath)
	if err != nil {
		return "", err
	}
	var found []string
	for uuid, m := range c.Machines {
		if m.UnitName == unit {
			found = append(found, uuid)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no machine has unit name %q", unit)
	case 1:
		return found[0], nil
	}
	sort.Strings(found)
	return "", fmt.Errorf("unit name %q is ambiguous (%s): use the UUID", unit, strings.Join(found, ", "))
}
