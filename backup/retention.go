package backup

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxRetentionCount bounds N in a retention item; beyond it durations
// overflow and nobody means it.
const maxRetentionCount = 100000

type retentionKind int

const (
	lastDays retentionKind = iota
	lastSnapshots
	earliestOf
)

// retentionItem is one comma-separated item of a retention spec.
type retentionItem struct {
	text string // normalised, for the reasons shown in plans
	kind retentionKind
	n    int
	unit string // "day", "week" or "month" for earliestOf
}

// Retention is a parsed retention spec (docs/protocol.md §7): a snapshot is
// kept if any item keeps it.
type Retention struct {
	items []retentionItem
}

// ParseRetention parses a spec such as "last 5 days, earliest of month".
// Items are "last N day[s]", "last N snapshot[s]" and "earliest of [N]
// day[s]|week[s]|fortnight[s]|month[s]", in lower case as the old storage
// unit matched them: it ignored "Last 5 Days", so reading that as a keep
// rule now would start deleting on an upgrade. Empty items are ignored;
// any other item is an error, so that a typo never deletes anything.
func ParseRetention(spec string) (*Retention, error) {
	r := &Retention{}
	for raw := range strings.SplitSeq(spec, ",") {
		f := strings.Fields(raw)
		if len(f) == 0 {
			continue
		}
		it, err := parseRetentionItem(f)
		if err != nil {
			return nil, fmt.Errorf("retention item %q: %w", strings.TrimSpace(raw), err)
		}
		r.items = append(r.items, it)
	}
	return r, nil
}

func parseRetentionItem(f []string) (retentionItem, error) {
	it := retentionItem{text: strings.Join(f, " ")}
	switch {
	case len(f) == 3 && f[0] == "last":
		n, err := parseCount(f[1])
		if err != nil {
			return it, err
		}
		it.n = n
		switch f[2] {
		case "day", "days":
			it.kind = lastDays
		case "snapshot", "snapshots":
			it.kind = lastSnapshots
		default:
			return it, fmt.Errorf("unknown unit %q: want days or snapshots", f[2])
		}
		return it, nil
	case (len(f) == 3 || len(f) == 4) && f[0] == "earliest" && f[1] == "of":
		it.kind, it.n = earliestOf, 1
		if len(f) == 4 {
			n, err := parseCount(f[2])
			if err != nil {
				return it, err
			}
			it.n = n
		}
		switch unit := f[len(f)-1]; unit {
		case "day", "days":
			it.unit = "day"
		case "week", "weeks":
			it.unit = "week"
		case "fortnight", "fortnights":
			// The old code matched "fortnight" as nothing at all.
			it.unit, it.n = "week", it.n*2
		case "month", "months":
			it.unit = "month"
		default:
			return it, fmt.Errorf("unknown unit %q: want day, week, fortnight or month", unit)
		}
		return it, nil
	}
	return it, fmt.Errorf(`unknown item: want "last N days", "last N snapshots" or "earliest of [N] day|week|fortnight|month"`)
}

func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxRetentionCount || s[0] == '+' {
		return 0, fmt.Errorf("count %q: want a whole number from 1 to %d", s, maxRetentionCount)
	}
	return n, nil
}

// cutoff returns the start of an "earliest of" window, computed on the
// calendar of now's location so that DST changes move nothing: day is
// local midnight n-1 days ago, week the midnight starting the most recent
// Sunday (today if Sunday) n-1 weeks further back, month the 1st of this
// month n-1 months back.
func (it retentionItem) cutoff(now time.Time) time.Time {
	y, m, d := now.Date()
	loc := now.Location()
	switch it.unit {
	case "week":
		return time.Date(y, m, d-int(now.Weekday())-7*(it.n-1), 0, 0, 0, 0, loc)
	case "month":
		return time.Date(y, m-time.Month(it.n-1), 1, 0, 0, 0, 0, loc)
	default:
		return time.Date(y, m, d-(it.n-1), 0, 0, 0, 0, loc)
	}
}

// Decision is the retention verdict on one snapshot.
type Decision struct {
	Snapshot Snapshot
	// KeptBy lists the items that keep it ("newest" when only the
	// never-delete-the-newest rule does); empty means delete.
	KeptBy []string
}

// Plan decides every snapshot's fate at time now (whose location gives
// the calendar). If the items keep nothing, everything is kept; otherwise
// the newest snapshot is always kept too, so the next run has a base and
// "latest" never dangles.
func (r *Retention) Plan(snaps []Snapshot, now time.Time) []Decision {
	sorted := slices.Clone(snaps)
	sortSnapshots(sorted)
	out := make([]Decision, len(sorted))
	for i, s := range sorted {
		out[i].Snapshot = s
	}
	kept := false
	keep := func(i int, why string) {
		if !slices.Contains(out[i].KeptBy, why) {
			out[i].KeptBy = append(out[i].KeptBy, why)
		}
		kept = true
	}
	for _, it := range r.items {
		switch it.kind {
		case lastDays:
			cut := now.Add(-time.Duration(it.n) * 24 * time.Hour)
			for i, s := range sorted {
				if !s.SyncFinish.Before(cut) {
					keep(i, it.text)
				}
			}
		case lastSnapshots:
			for i := len(sorted) - 1; i >= 0 && i >= len(sorted)-it.n; i-- {
				keep(i, it.text)
			}
		case earliestOf:
			cut := it.cutoff(now)
			for i, s := range sorted {
				if !s.SyncFinish.Before(cut) {
					keep(i, it.text)
					break
				}
			}
		}
	}
	if !kept {
		for i := range out {
			out[i].KeptBy = []string{"retention keeps nothing"}
		}
		return out
	}
	if len(out) > 0 && len(out[len(out)-1].KeptBy) == 0 {
		out[len(out)-1].KeptBy = []string{"newest"}
	}
	return out
}

// ToDelete returns the snapshots Plan would delete, oldest first.
func (r *Retention) ToDelete(snaps []Snapshot, now time.Time) []Snapshot {
	var del []Snapshot
	for _, d := range r.Plan(snaps, now) {
		if len(d.KeptBy) == 0 {
			del = append(del, d.Snapshot)
		}
	}
	return del
}
