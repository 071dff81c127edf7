package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/registry"
)

// completeMachineSource completes MACHINE SOURCE [SNAPSHOT] from what is
// on disk: machine UUIDs and name links in VAR_DIR/machines plus the unit
// names of the key cache, that machine's sources, then its snapshots.
// Errors complete nothing: a shell completion never prints them.
func completeMachineSource(g *globals, withSnapshot bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		none := cobra.ShellCompDirectiveNoFileComp
		cfg, err := config.Load(g.configDir)
		if err != nil {
			return nil, none
		}
		cache := filepath.Join(cfg.VarDir, registry.CacheFile)
		var out []string
		switch len(args) {
		case 0:
			entries, _ := os.ReadDir(backup.MachinesDir(cfg.VarDir))
			for _, e := range entries {
				out = append(out, e.Name())
			}
			if c, err := registry.LoadCache(cache); err == nil {
				for _, m := range c.Machines {
					if m.UnitName != "" {
						out = append(out, m.UnitName)
					}
				}
			}
		case 1:
			if _, dir, err := backup.ResolveMachine(cfg.VarDir, args[0], daemon.RegisteredMachines(cfg)); err == nil {
				out, _ = backup.ListSources(dir)
			}
		case 2:
			if !withSnapshot {
				return nil, none
			}
			if _, dir, err := backup.ResolveMachine(cfg.VarDir, args[0], daemon.RegisteredMachines(cfg)); err == nil {
				snaps, _ := backup.ListSnapshots(dir, args[1], cfg.Location)
				out = append(out, "latest")
				for _, s := range snaps {
					out = append(out, s.Name)
				}
			}
		}
		slices.Sort(out)
		out = slices.Compact(out)
		out = slices.DeleteFunc(out, func(s string) bool { return !strings.HasPrefix(s, toComplete) })
		return out, none
	}
}
