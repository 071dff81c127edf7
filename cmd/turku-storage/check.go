package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/internal/words"
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
		Long: `Reads the snapshots on disk (VAR_DIR/machines), the backup history
(VAR_DIR/history) and the volumes, and prints one Nagios plugin line with
perfdata, then one line per problem:

  CRITICAL (exit 2)  a source had no successful backup within --max-age of
                     its last success or, if it never succeeded, of its
                     first attempt (named with its last error and the
                     failures in a row); a machine assigned here longer
                     than --max-age ago never backed up at all; a volume
                     is missing, not mounted or read-only; or a volume is
                     filled above its max_usage_pct or has more inodes
                     used than its max_inode_usage_pct (the disk guard: no
                     backup starts there);
  WARNING  (exit 1)  the same past --warn-age, or a machine directory, a
                     volume or the history cannot be read;
  OK       (exit 0)  otherwise (failing sources still within --max-age
                     are counted in the summary and the perfdata);
  UNKNOWN  (exit 3)  the configuration or VAR_DIR/machines cannot be read.

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
	c := sourceCheck{r: &r, maxAge: maxAge, warnAge: warnAge, now: now}
	hist := history.New(historyDir(cfg))
	latest, err := hist.Latest()
	if err != nil {
		r.raise(checkWarning)
		r.details = append(r.details, fmt.Sprintf("WARNING: backup history: %v", err))
	}
	assigned, err := hist.Assigned()
	if err != nil {
		r.raise(checkWarning)
		r.details = append(r.details, fmt.Sprintf("WARNING: backup history: %v", err))
	}
	seen := map[string]bool{}
	for _, m := range machines {
		seen[m.UUID] = true
		who := m.UUID
		if len(m.Names) > 0 {
			who += " (" + strings.Join(m.Names, ", ") + ")"
		}
		if m.Err != nil {
			c.unreadable++
			r.raise(checkWarning)
			r.details = append(r.details, fmt.Sprintf("WARNING: %s: %v", who, m.Err))
		}
		recs := latest[m.UUID]
		for _, s := range m.Sources {
			rec, ok := recs[s.Name]
			delete(recs, s.Name)
			c.source(who, s.Name, s.Newest(), rec, ok)
		}
		for _, name := range slices.Sorted(maps.Keys(recs)) {
			c.source(who, name, nil, recs[name], true)
		}
		if len(m.Sources) == 0 && len(recs) == 0 {
			c.machine(who, assigned[m.UUID])
		}
	}
	// Machines with a history but no directory (every attempt failed
	// before placement), then machines assigned here that never did
	// anything at all.
	for _, uuid := range slices.Sorted(maps.Keys(latest)) {
		if seen[uuid] {
			continue
		}
		seen[uuid] = true
		who := uuidLabel(uuid, assigned[uuid].Unit)
		for _, name := range slices.Sorted(maps.Keys(latest[uuid])) {
			c.source(who, name, nil, latest[uuid][name], true)
		}
	}
	for _, uuid := range slices.Sorted(maps.Keys(assigned)) {
		if !seen[uuid] {
			seen[uuid] = true
			c.machine(uuidLabel(uuid, assigned[uuid].Unit), assigned[uuid])
		}
	}
	c.summarise(len(seen))
	var full, unusable int
	for _, v := range backup.VolumeStatus(cfg.VarDir, backupVolumes(cfg.Volumes)) {
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
		fmt.Sprintf("machines=%d;;;0", len(seen)),
		fmt.Sprintf("sources=%d;;;0", c.sources),
		fmt.Sprintf("stale=%d;;;0", c.stale),
		fmt.Sprintf("oldest_age=%.0fs;%s;%.0f;0", c.oldest.Seconds(), perfThreshold(warnAge), maxAge.Seconds()),
		fmt.Sprintf("full_volumes=%d;;;0", full),
		fmt.Sprintf("unusable_volumes=%d;;;0", unusable),
		fmt.Sprintf("spooled_reports=%d;;;0", backup.SpooledReports(cfg.VarDir)),
		fmt.Sprintf("failing=%d;;;0", c.failing),
		fmt.Sprintf("never_backed_up=%d;;;0", c.never),
	}, r.perfdata...)
	return r, nil
}

func perfThreshold(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f", d.Seconds())
}

// sourceCheck rates each source (and each machine without one) against
// --max-age and --warn-age, counting into the perfdata.
type sourceCheck struct {
	r               *checkResult
	maxAge, warnAge time.Duration
	now             time.Time

	sources, checked, stale, warned, unreadable int
	failing, never, lateMachines                int
	oldest                                      time.Duration
}

// source rates one source from its newest snapshot on disk (nil: none)
// and its newest history record (ok false: none). The clock runs from its
// last success or, if it never succeeded, from when this unit first saw
// it (its first failed attempt).
func (c *sourceCheck) source(who, name string, snap *backup.Snapshot, rec history.Attempt, ok bool) {
	c.sources++
	var lastSuccess, since time.Time
	what := ""
	if snap != nil {
		lastSuccess = snap.SyncFinish
		what = fmt.Sprintf("newest snapshot %s finished %%s ago", snap.Name)
	}
	if ok && rec.LastSuccess.After(lastSuccess) {
		lastSuccess = rec.LastSuccess
		what = "last successful backup finished %s ago"
	}
	since = lastSuccess
	if lastSuccess.IsZero() {
		if !ok {
			return // cannot happen: a source comes from a snapshot or a record
		}
		since = cmp.Or(rec.FailingSince, rec.Begin)
		what = fmt.Sprintf("never backed up; first attempt %%s ago (%s)", words.When(since))
	}
	c.checked++
	failed := ok && !rec.Success
	if failed {
		c.failing++
		if lastSuccess.IsZero() {
			c.never++
		}
		what += fmt.Sprintf("; %s failed in a row, the last %s ago: %s",
			words.Count(rec.Failures, "attempt", ""), words.Age(c.now.Sub(rec.End)), rec.FirstLine())
	}
	age := c.now.Sub(since)
	c.oldest = max(c.oldest, age)
	line := fmt.Sprintf("%s %s: "+what, who, name, words.Age(age))
	switch {
	case age > c.maxAge:
		c.stale++
		c.r.raise(checkCritical)
		c.r.details = append(c.r.details, "CRITICAL: "+line)
	case c.warnAge > 0 && age > c.warnAge:
		c.warned++
		c.r.raise(checkWarning)
		c.r.details = append(c.r.details, "WARNING: "+line)
	}
}

// machine rates a machine with no source at all: assigned here longer
// than --max-age ago and never backed up is CRITICAL.
func (c *sourceCheck) machine(who string, a history.Assignment) {
	if a.Since.IsZero() {
		return // not (or no longer) assigned here: nothing to expect
	}
	age := c.now.Sub(a.Since)
	line := fmt.Sprintf("%s: assigned to this storage unit %s ago (%s) and never backed up: no source has checked in", who, words.Age(age), words.When(a.Since))
	switch {
	case age > c.maxAge:
		c.never++
		c.lateMachines++
		c.r.raise(checkCritical)
		c.r.details = append(c.r.details, "CRITICAL: "+line)
	case c.warnAge > 0 && age > c.warnAge:
		c.never++
		c.lateMachines++
		c.r.raise(checkWarning)
		c.r.details = append(c.r.details, "WARNING: "+line)
	}
}

func (c *sourceCheck) summarise(machines int) {
	switch {
	case c.stale > 0:
		c.r.summary = append(c.r.summary, fmt.Sprintf("%d of %s %s no successful backup within %s", c.stale, words.Count(c.checked, "source", ""), words.Has(c.stale), c.maxAge))
	case c.warned > 0:
		c.r.summary = append(c.r.summary, fmt.Sprintf("%d of %s %s no successful backup within %s", c.warned, words.Count(c.checked, "source", ""), words.Has(c.warned), c.warnAge))
	default:
		c.r.summary = append(c.r.summary, fmt.Sprintf("%s of %s backed up within %s", words.Count(c.checked, "source", ""), words.Count(machines, "machine", ""), c.maxAge))
	}
	if c.lateMachines > 0 {
		c.r.summary = append(c.r.summary, words.Count(c.lateMachines, "machine", "")+" assigned here never backed up")
	}
	if c.failing > 0 {
		c.r.summary = append(c.r.summary, words.Count(c.failing, "source", "")+" failing")
	}
	if c.unreadable > 0 {
		c.r.summary = append(c.r.summary, words.Count(c.unreadable, "machine directory", "machine directories")+" unreadable")
	}
}

// uuidLabel names a machine known only by UUID and unit name, as check
// names the others: "uuid (name)".
func uuidLabel(uuid, unit string) string {
	if unit == "" {
		return uuid
	}
	return uuid + " (" + unit + ")"
}
