package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/internal/words"
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, cfg, err := g.loadWithLog()
			if err != nil {
				return err
			}
			orphans, err := backup.Orphans(cfg.VarDir, history.New(historyDir(cfg)))
			if err != nil {
				return err
			}
			return printOrphans(g, orphans, asJSON, time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(newOrphansPurgeCmd(g))
	return cmd
}

// orphanJSON is one orphan in `orphans --json`.
type orphanJSON struct {
	UUID  string    `json:"uuid"`
	Unit  string    `json:"unit,omitempty"`
	Names []string  `json:"names"`
	Path  string    `json:"path"`
	Since time.Time `json:"orphaned_since"`
	// UsageBytes is the space its snapshots take; with UsageKnown false,
	// only that of the sources whose figure is known.
	UsageBytes int64  `json:"usage_bytes"`
	UsageKnown bool   `json:"usage_known"`
	Error      string `json:"error,omitempty"`
}

func printOrphans(g *globals, orphans []backup.Orphan, asJSON bool, now time.Time) error {
	list := make([]orphanJSON, 0, len(orphans))
	for _, o := range orphans {
		j := orphanJSON{UUID: o.UUID, Unit: o.Unit, Names: o.Names, Path: o.Dir, Since: o.Since,
			UsageBytes: o.Usage.Bytes, UsageKnown: o.Usage.Known}
		if o.UsageErr != nil {
			j.Error = o.UsageErr.Error()
		}
		list = append(list, j)
	}
	if asJSON {
		return writeJSON(g, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(g.stdout, "No orphaned machines.")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tUNIT\tNAMES\tORPHANED SINCE\tFOR\tSPACE")
	for _, o := range list {
		space := sizeText(o.UsageBytes)
		switch {
		case o.Error != "":
			space = "error: " + o.Error
		case !o.UsageKnown:
			space = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.UUID, dash(o.Unit), dash(strings.Join(o.Names, ",")),
			o.Since.Format(time.RFC3339), words.Age(now.Sub(o.Since)), space)
	}
	return tw.Flush()
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
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cfg, err := g.loadWithLog()
			if err != nil {
				return err
			}
			return purgeOrphan(g, cfg, args[0], yes)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "delete without asking")
	return cmd
}

// errNotConfirmed is why purge deleted nothing without --yes.
var errNotConfirmed = errors.New("not confirmed; nothing deleted")

func purgeOrphan(g *globals, cfg *config.Config, name string, yes bool) error {
	uuid, _, err := backup.ResolveMachine(cfg.VarDir, name, registeredMachines(cfg))
	if err != nil {
		return err
	}
	opts := backup.PurgeOptions{VarDir: cfg.VarDir, LockDir: cfg.LockDir, Volumes: backupVolumes(cfg.Volumes),
		Assigned: registeredMachines(cfg)}
	// Refuse an assigned machine before asking anything.
	if assigned, err := opts.Assigned(); err != nil {
		return fmt.Errorf("machine %s: cannot tell whether it is assigned here (key cache: %w); nothing deleted", uuid, err)
	} else if m, ok := assigned[uuid]; ok {
		return fmt.Errorf("machine %s (%s) is %w; nothing deleted", uuid, m.UnitName, backup.ErrAssigned)
	}
	if !yes {
		if err := confirmPurge(g, cfg, uuid); err != nil {
			return err
		}
	}
	p, err := backup.PurgeMachine(opts, uuid)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "Purged machine %s: removed %s (%s of snapshots) and %s\n", uuid, dash(p.Dir), usageText(p.Usage),
		strings.Join(p.Links, ", "))
	return nil
}

// confirmPurge asks on the terminal; without one it refuses.
func confirmPurge(g *globals, cfg *config.Config, uuid string) error {
	in, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) || !isTerminal(g.stdout) {
		return fmt.Errorf("machine %s: no terminal to confirm on, and no --yes: %w", uuid, errNotConfirmed)
	}
	what := uuid
	for _, o := range mustOrphans(cfg) {
		if o.UUID == uuid {
			what = fmt.Sprintf("%s (%s), orphaned since %s, %s of snapshots", uuid, dash(o.Unit), o.Since.Format(time.RFC3339), usageText(o.Usage))
		}
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

// mustOrphans lists the orphans for a prompt; none when unreadable.
func mustOrphans(cfg *config.Config) []backup.Orphan {
	o, _ := backup.Orphans(cfg.VarDir, history.New(historyDir(cfg)))
	return o
}

func usageText(u backup.SnapshotUsage) string {
	if !u.Known {
		return "at least " + sizeText(u.Bytes)
	}
	return sizeText(u.Bytes)
}

// orphanedSince returns when each orphan on disk was found unassigned,
// for snapshots and check; empty when unknown.
func orphanedSince(cfg *config.Config) map[string]time.Time {
	out := map[string]time.Time{}
	for uuid, t := range orphansOnDisk(cfg.VarDir) {
		out[uuid] = *t
	}
	return out
}

// orphansOnDisk maps each orphan in varDir to when it was found
// unassigned, for snapshots; empty when unknown.
func orphansOnDisk(varDir string) map[string]*time.Time {
	out := map[string]*time.Time{}
	orphans, _ := backup.Orphans(varDir, history.New(filepath.Join(varDir, history.DirName)))
	for _, o := range orphans {
		out[o.UUID] = &o.Since
	}
	return out
}
