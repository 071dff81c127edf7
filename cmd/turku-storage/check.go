package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
)

// Nagios plugin exit statuses (Nagios Plugin API, "Return code").
const (
	checkOK       = 0
	checkWarning  = 1
	checkCritical = 2
	checkUnknown  = 3
)

var checkStates = []string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

func newCheckCmd(g *globals) *cobra.Command {
	var maxAge, warnAge time.Duration
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that every source was backed up recently (Nagios plugin)",
		Long: `Reads the snapshots on disk (VAR_DIR/machines) and the volumes, and
prints one Nagios plugin line with perfdata, then one line per problem:

  CRITICAL (exit 2)  a source's newest snapshot is older than --max-age,
                     a volume is missing, not mounted or read-only, or a
                     volume is filled above its max_usage_pct or has more
                     inodes used than its max_inode_usage_pct (the disk
                     guard: no backup starts there);
  WARNING  (exit 1)  a source's newest snapshot is older than --warn-age,
                     or a machine directory or volume cannot be read;
  OK       (exit 0)  otherwise;
  UNKNOWN  (exit 3)  the configuration or VAR_DIR/machines cannot be read.

Sources without snapshots (snapshot_mode "none") are counted, not checked.
It runs without serve and changes nothing, so cron and monitoring systems
that do not scrape /metrics can call it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxAge <= 0 || warnAge < 0 || (warnAge > 0 && warnAge >= maxAge) {
				return fmt.Errorf("--max-age must be positive and --warn-age, if set, below it (got %v, %v)", maxAge, warnAge)
			}
			log, err := g.stderrLogger()
			if err != nil {
				return err
			}
			cfg, err := g.load(log)
			if err == nil {
				var r checkResult
				r, err = runCheck(cmd.Context(), cfg, maxAge, warnAge, time.Now())
				if err == nil {
					r.write(g.stdout)
					if r.state == checkOK {
						return nil
					}
					return &exitError{code: r.state, err: errors.New(checkStates[r.state]), quiet: true}
				}
			}
			fmt.Fprintf(g.stdout, "TURKU-STORAGE UNKNOWN - %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return &exitError{code: checkUnknown, err: err}
		},
	}
	cmd.Flags().DurationVar(&maxAge, "max-age", 48*time.Hour, "CRITICAL when a source's newest snapshot is older")
	cmd.Flags().DurationVar(&warnAge, "warn-age", 0, "WARNING when a source's newest snapshot is older (0: no warning level)")
	return cmd
}

// checkResult is what check found.
type checkResult struct {
	state    int
	summary  []string // joined into the first line
	details  []string // one line each after it
	perfdata []string
}

func (r *checkResult) raise(state int) { r.state = max(r.state, state) }

func (r checkResult) write(w io.Writer) {
	fmt.Fprintf(w, "TURKU-STORAGE %s - %s | %s\n", checkStates[r.state], strings.Join(r.summary, "; "), strings.Join(r.perfdata, " "))
	for _, d := range r.details {
		fmt.Fprintln(w, d)
	}
}

func runCheck(ctx context.Context, cfg *config.Config, maxAge, warnAge time.Duration, now time.Time) (checkResult, error) {
	var r checkResult
	machines, err := backup.Inventory(ctx, cfg.VarDir, cfg.Location)
	if err != nil {
		return r, fmt.Errorf("read machines: %w", err)
	}
	var sources, checked, stale, warned, unreadable int
	var oldest time.Duration
	for _, m := range machines {
		who := m.UUID
		if len(m.Names) > 0 {
			who += " (" + strings.Join(m.Names, ", ") + ")"
		}
		if m.Err != nil {
			unreadable++
			r.raise(checkWarning)
			r.details = append(r.details, fmt.Sprintf("WARNING: %s: %v", who, m.Err))
		}
		for _, s := range m.Sources {
			sources++
			latest := s.Newest()
			if latest == nil {
				continue
			}
			checked++
			age := now.Sub(latest.SyncFinish)
			oldest = max(oldest, age)
			switch {
			case age > maxAge:
				stale++
				r.raise(checkCritical)
				r.details = append(r.details, fmt.Sprintf("CRITICAL: %s %s: newest snapshot %s finished %s ago", who, s.Name, latest.Name, roundAge(age)))
			case warnAge > 0 && age > warnAge:
				warned++
				r.raise(checkWarning)
				r.details = append(r.details, fmt.Sprintf("WARNING: %s %s: newest snapshot %s finished %s ago", who, s.Name, latest.Name, roundAge(age)))
			}
		}
	}
	switch {
	case stale > 0:
		r.summary = append(r.summary, fmt.Sprintf("%d of %d sources have no snapshot within %s", stale, checked, maxAge))
	case warned > 0:
		r.summary = append(r.summary, fmt.Sprintf("%d of %d sources have no snapshot within %s", warned, checked, warnAge))
	default:
		r.summary = append(r.summary, fmt.Sprintf("%d sources of %d machines backed up within %s", checked, len(machines), maxAge))
	}
	if unreadable > 0 {
		r.summary = append(r.summary, fmt.Sprintf("%d machine directories unreadable", unreadable))
	}
	var full, unusable int
	for _, v := range volumeUsage(cfg.VarDir, cfg.Volumes) {
		switch {
		case v.State != backup.VolumeOK && v.State != backup.VolumeUnreadable:
			// Missing, not a directory, not mounted, read-only: every
			// backup on it fails.
			unusable++
			r.raise(checkCritical)
			r.summary = append(r.summary, v.Message)
			r.details = append(r.details, "CRITICAL: "+v.Message)
		case v.Err != "" || v.State == backup.VolumeUnreadable:
			r.raise(checkWarning)
			r.details = append(r.details, fmt.Sprintf("WARNING: volume %s: %s", v.Name, cmp.Or(v.Err, v.Message)))
		}
		if v.Err != "" {
			continue
		}
		switch {
		case v.UsedPct > float64(v.MaxUsagePct):
			full++
			r.raise(checkCritical)
			msg := fmt.Sprintf("volume %s %.1f%% full, above max_usage_pct %d%%: no backup starts there", v.Name, v.UsedPct, v.MaxUsagePct)
			r.summary = append(r.summary, msg)
			r.details = append(r.details, "CRITICAL: "+msg)
		case v.Inodes > 0 && v.InodeUsedPct > float64(v.MaxInodeUsagePct):
			full++
			r.raise(checkCritical)
			msg := fmt.Sprintf("volume %s: %.1f%% of inodes used, above max_inode_usage_pct %d%%: no backup starts there", v.Name, v.InodeUsedPct, v.MaxInodeUsagePct)
			r.summary = append(r.summary, msg)
			r.details = append(r.details, "CRITICAL: "+msg)
		}
		// Nagios perfdata: 'label'=value[UOM];warn;crit;min;max
		r.perfdata = append(r.perfdata, fmt.Sprintf("'used_%s'=%.1f%%;;%d;0;100", v.Name, v.UsedPct, v.MaxUsagePct))
		if v.Inodes > 0 {
			r.perfdata = append(r.perfdata, fmt.Sprintf("'inodes_used_%s'=%.1f%%;;%d;0;100", v.Name, v.InodeUsedPct, v.MaxInodeUsagePct))
		}
	}
	r.perfdata = append([]string{
		fmt.Sprintf("machines=%d;;;0", len(machines)),
		fmt.Sprintf("sources=%d;;;0", sources),
		fmt.Sprintf("stale=%d;;;0", stale),
		fmt.Sprintf("oldest_age=%.0fs;%s;%.0f;0", oldest.Seconds(), perfThreshold(warnAge), maxAge.Seconds()),
		fmt.Sprintf("full_volumes=%d;;;0", full),
		fmt.Sprintf("unusable_volumes=%d;;;0", unusable),
		fmt.Sprintf("spooled_reports=%d;;;0", spooledReports(reportsDir(cfg))),
	}, r.perfdata...)
	return r, nil
}

func perfThreshold(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f", d.Seconds())
}

// roundAge shows an age to the minute, like "50h12m".
func roundAge(d time.Duration) string {
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
