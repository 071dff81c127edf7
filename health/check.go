package health

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/internal/words"
	"github.com/turku-backup/turku-storage/monitor"
)

// Nagios plugin states, the plugin's exit statuses (Nagios Plugin API,
// "Return code").
const (
	OK       = 0
	Warning  = 1
	Critical = 2
	Unknown  = 3
)

// StateNames name the states as a plugin's output line does.
var StateNames = []string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

// Options say what to check and against which ages.
type Options struct {
	// VarDir holds machines/ and history/; Location is the zone of the
	// snapshot names.
	VarDir   string
	Location *time.Location
	// Volumes are the volumes as measured now (backup.VolumeStatus).
	Volumes []monitor.Volume
	// SpooledReports counts the reports waiting for the API.
	SpooledReports int
	// Orphans are the machines on disk no longer assigned here, with
	// when they were found so; one older than OrphanWarnAfter (0: never)
	// is a WARNING, and none counts as stale.
	Orphans         map[string]time.Time
	OrphanWarnAfter time.Duration
	// MaxAge makes a source CRITICAL, WarnAge (0: no warning level)
	// WARNING, when its last success (or first attempt) is older.
	MaxAge, WarnAge time.Duration
	Now             time.Time
	// Log gets the snapshot index's lines (backup.IndexOptions).
	Log *slog.Logger
}

// Result is what Check found: a plugin's state, the summary of its first
// line, a line per problem after it, and the perfdata.
type Result struct {
	State    int
	Summary  []string // joined into the first line
	Details  []string // one line each after it
	Perfdata []string
}

func (r *Result) raise(state int) { r.State = max(r.State, state) }

// Write prints r as a Nagios plugin's output: the state, summary and
// perfdata on the first line, then a line per problem.
func (r Result) Write(w io.Writer) {
	fmt.Fprintf(w, "TURKU-STORAGE %s - %s | %s\n", StateNames[r.State], strings.Join(r.Summary, "; "), strings.Join(r.Perfdata, " "))
	for _, d := range r.Details {
		fmt.Fprintln(w, d)
	}
}

// Check rates every source on disk and in the history, every machine
// assigned here and every volume; it fails only when the machines
// directory cannot be read (the plugin's UNKNOWN).
func Check(ctx context.Context, o Options) (Result, error) {
	var r Result
	hist := history.New(filepath.Join(o.VarDir, history.DirName))
	// The history is read while the disk is: neither waits for the
	// other, and on two cores they take about half the time.
	type latestRead struct {
		latest map[string]map[string]history.Attempt
		err    error
	}
	histc := make(chan latestRead, 1)
	go func() {
		latest, err := hist.Latest()
		histc <- latestRead{latest, err}
	}()
	machines, err := backup.Summaries(ctx, o.VarDir, backup.IndexOptions{Location: o.Location, Log: o.Log})
	h := <-histc
	if err != nil {
		return r, fmt.Errorf("read machines: %w", err)
	}
	c := sourceCheck{r: &r, maxAge: o.MaxAge, warnAge: o.WarnAge, now: o.Now}
	latest := h.latest
	if err := h.err; err != nil {
		r.raise(Warning)
		r.Details = append(r.Details, fmt.Sprintf("WARNING: backup history: %v", err))
	}
	assigned, assignedKnown, err := hist.AssignedKnown()
	if err != nil {
		r.raise(Warning)
		r.Details = append(r.Details, fmt.Sprintf("WARNING: backup history: %v", err))
	}
	oc := orphanCheck{r: &r, since: o.Orphans, warnAfter: o.OrphanWarnAfter, now: o.Now}
	nmachines := c.machines(machines, latest, assigned, assignedKnown, &oc)
	c.summarise(nmachines)
	oc.summarise()
	full, unusable := r.volumes(o.Volumes)
	r.Perfdata = append([]string{
		fmt.Sprintf("machines=%d;;;0", nmachines),
		fmt.Sprintf("sources=%d;;;0", c.sources),
		fmt.Sprintf("stale=%d;;;0", c.stale),
		fmt.Sprintf("oldest_age=%.0fs;%s;%.0f;0", c.oldest.Seconds(), perfThreshold(o.WarnAge), o.MaxAge.Seconds()),
		fmt.Sprintf("full_volumes=%d;;;0", full),
		fmt.Sprintf("unusable_volumes=%d;;;0", unusable),
		fmt.Sprintf("spooled_reports=%d;;;0", o.SpooledReports),
		fmt.Sprintf("failing=%d;;;0", c.failing),
		fmt.Sprintf("never_backed_up=%d;;;0", c.never),
	}, r.Perfdata...)
	return r, nil
}

// machines rates the machines on disk (an orphan as such, oc), then those
// with a history but no directory (every attempt failed before
// placement) still assigned here, then those assigned here that never
// did anything at all. It returns how many it rated.
func (c *sourceCheck) machines(machines []backup.MachineSummary, latest map[string]map[string]history.Attempt,
	assigned map[string]history.Assignment, assignedKnown bool, oc *orphanCheck) int {
	seen := map[string]bool{}
	for _, m := range machines {
		seen[m.UUID] = true
		who := m.UUID
		if len(m.Names) > 0 {
			who += " (" + strings.Join(m.Names, ", ") + ")"
		}
		if oc.skip(who, m.UUID) {
			continue
		}
		if m.Err != nil {
			c.unreadable++
			c.r.raise(Warning)
			c.r.Details = append(c.r.Details, fmt.Sprintf("WARNING: %s: %v", who, m.Err))
		}
		recs := latest[m.UUID]
		for _, s := range m.Sources {
			rec, ok := recs[s.Name]
			delete(recs, s.Name)
			c.source(who, s.Name, s.Newest, rec, ok)
		}
		for _, name := range slices.Sorted(maps.Keys(recs)) {
			c.source(who, name, nil, recs[name], true)
		}
		if len(m.Sources) == 0 && len(recs) == 0 {
			c.machine(who, assigned[m.UUID])
		}
	}
	for _, uuid := range slices.Sorted(maps.Keys(latest)) {
		if seen[uuid] || departedHistory(uuid, assigned, assignedKnown) {
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
	return len(seen)
}

// volumes rates each volume: unusable (missing, not a directory, not
// mounted, read-only: every backup on it fails) or past the disk guard's
// thresholds is CRITICAL, unreadable a WARNING. It returns how many are
// full and unusable.
func (r *Result) volumes(vols []monitor.Volume) (full, unusable int) {
	for _, v := range vols {
		switch {
		case v.State != backup.VolumeOK && v.State != backup.VolumeUnreadable:
			unusable++
			r.raise(Critical)
			r.Summary = append(r.Summary, v.Message)
			r.Details = append(r.Details, "CRITICAL: "+v.Message)
		case v.Err != "" || v.State == backup.VolumeUnreadable:
			r.raise(Warning)
			r.Details = append(r.Details, fmt.Sprintf("WARNING: volume %s: %s", v.Name, cmp.Or(v.Err, v.Message)))
		}
		if v.Err != "" {
			continue
		}
		msg := ""
		switch {
		case v.UsedPct > float64(v.MaxUsagePct):
			msg = fmt.Sprintf("volume %s %.1f%% full, above max_usage_pct %d%%: no backup starts there", v.Name, v.UsedPct, v.MaxUsagePct)
		case v.Inodes > 0 && v.InodeUsedPct > float64(v.MaxInodeUsagePct):
			msg = fmt.Sprintf("volume %s: %.1f%% of inodes used, above max_inode_usage_pct %d%%: no backup starts there", v.Name, v.InodeUsedPct, v.MaxInodeUsagePct)
		}
		if msg != "" {
			full++
			r.raise(Critical)
			r.Summary = append(r.Summary, msg)
			r.Details = append(r.Details, "CRITICAL: "+msg)
		}
		// Nagios perfdata: 'label'=value[UOM];warn;crit;min;max
		r.Perfdata = append(r.Perfdata, fmt.Sprintf("'used_%s'=%.1f%%;;%d;0;100", v.Name, v.UsedPct, v.MaxUsagePct))
		if v.Inodes > 0 {
			r.Perfdata = append(r.Perfdata, fmt.Sprintf("'inodes_used_%s'=%.1f%%;;%d;0;100", v.Name, v.InodeUsedPct, v.MaxInodeUsagePct))
		}
	}
	return full, unusable
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
	r               *Result
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
	var lastSuccess time.Time
	what := ""
	if snap != nil {
		lastSuccess = snap.SyncFinish
		what = fmt.Sprintf("newest snapshot %s finished %%s ago", snap.Name)
	}
	if ok && rec.LastSuccess.After(lastSuccess) {
		if gone := rec.Success && rec.Snapshot != "" && (snap == nil || snap.Name != rec.Snapshot); gone {
			// Its last backup's snapshot was deleted (by hand: retention
			// keeps the newest): that backup is no backup any more.
			if snap == nil {
				c.goneLine(who, name, rec.Snapshot)
				return
			}
			what += fmt.Sprintf(" (the last successful backup's, %s, is no longer on disk)", rec.Snapshot)
		} else {
			lastSuccess = rec.LastSuccess
			what = "last successful backup finished %s ago"
		}
	}
	var firstSeen time.Time
	if ok {
		firstSeen = cmp.Or(rec.FailingSince, rec.Begin)
	}
	since := history.Since(lastSuccess, firstSeen)
	if since.IsZero() {
		return // cannot happen: a source comes from a snapshot or a record
	}
	if lastSuccess.IsZero() {
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
	level, age := c.rule().Rate(since, c.now)
	c.oldest = max(c.oldest, age)
	line := fmt.Sprintf("%s %s: "+what, who, name, words.Age(age))
	switch level {
	case history.Critical:
		c.stale++
		c.r.raise(Critical)
		c.r.Details = append(c.r.Details, "CRITICAL: "+line)
	case history.Warning:
		c.warned++
		c.r.raise(Warning)
		c.r.Details = append(c.r.Details, "WARNING: "+line)
	}
}

// goneLine rates a source whose last successful backup made snapshot,
// which is no longer on disk, and which has no other: CRITICAL, whatever
// the history's times say.
func (c *sourceCheck) goneLine(who, name, snapshot string) {
	c.checked++
	c.stale++
	c.r.raise(Critical)
	c.r.Details = append(c.r.Details, fmt.Sprintf("CRITICAL: %s %s: no snapshot on disk; that of its last successful backup, %s, was deleted", who, name, snapshot))
}

// rule is the staleness rule check shares with the dashboard.
func (c *sourceCheck) rule() history.Staleness {
	return history.Staleness{MaxAge: c.maxAge, WarnAge: c.warnAge}
}

// machine rates a machine with no source at all: assigned here longer
// than --max-age ago and never backed up is CRITICAL.
func (c *sourceCheck) machine(who string, a history.Assignment) {
	if a.Since.IsZero() {
		return // not (or no longer) assigned here: nothing to expect
	}
	level, age := c.rule().Rate(a.Since, c.now)
	line := fmt.Sprintf("%s: assigned to this storage unit %s ago (%s) and never backed up: no source has checked in", who, words.Age(age), words.When(a.Since))
	switch level {
	case history.Critical:
		c.never++
		c.lateMachines++
		c.r.raise(Critical)
		c.r.Details = append(c.r.Details, "CRITICAL: "+line)
	case history.Warning:
		c.never++
		c.lateMachines++
		c.r.raise(Warning)
		c.r.Details = append(c.r.Details, "WARNING: "+line)
	}
}

func (c *sourceCheck) summarise(machines int) {
	switch {
	case c.stale > 0:
		c.r.Summary = append(c.r.Summary, fmt.Sprintf("%d of %s %s no successful backup within %s", c.stale, words.Count(c.checked, "source", ""), words.Has(c.stale), c.maxAge))
	case c.warned > 0:
		c.r.Summary = append(c.r.Summary, fmt.Sprintf("%d of %s %s no successful backup within %s", c.warned, words.Count(c.checked, "source", ""), words.Has(c.warned), c.warnAge))
	default:
		c.r.Summary = append(c.r.Summary, fmt.Sprintf("%s of %s backed up within %s", words.Count(c.checked, "source", ""), words.Count(machines, "machine", ""), c.maxAge))
	}
	if c.lateMachines > 0 {
		c.r.Summary = append(c.r.Summary, words.Count(c.lateMachines, "machine", "")+" assigned here never backed up")
	}
	if c.failing > 0 {
		c.r.Summary = append(c.r.Summary, words.Count(c.failing, "source", "")+" failing")
	}
	if c.unreadable > 0 {
		c.r.Summary = append(c.r.Summary, words.Count(c.unreadable, "machine directory", "machine directories")+" unreadable")
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
