package health

import (
	"fmt"
	"time"

	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/internal/words"
)

// orphanCheck rates the orphans for check: machines with data here that
// the coordinator no longer assigns here. They are never stale sources
// (they are backed up elsewhere now, or not at all); one orphaned longer
// than orphan_warn_after is a WARNING, so that it gets purged.
type orphanCheck struct {
	r         *Result
	since     map[string]time.Time // orphanedSince
	warnAfter time.Duration
	now       time.Time

	orphans, old int
}

// skip reports whether uuid is an orphan, and rates it if so.
func (c *orphanCheck) skip(who, uuid string) bool {
	since, ok := c.since[uuid]
	if !ok {
		return false
	}
	c.orphans++
	if age := c.now.Sub(since); c.warnAfter > 0 && age > c.warnAfter {
		c.old++
		c.r.raise(Warning)
		c.r.Details = append(c.r.Details, fmt.Sprintf("WARNING: %s: no longer assigned to this storage unit for %s (since %s), its backups still here: "+
			"`turku-storage orphans purge %s` once it is backed up elsewhere", who, daysText(age), words.When(since), uuid))
	}
	return true
}

// departedHistory reports whether uuid, a machine with a history but no
// data here, is no longer assigned here: its sources are nobody's concern
// on this unit. While no refresh was ever recorded (known false), every
// machine counts; once one was, a refresh that listed no machine at all (a
// drained unit whose last machine moved away) departs them all.
func departedHistory(uuid string, assigned map[string]history.Assignment, known bool) bool {
	_, ok := assigned[uuid]
	return known && !ok
}

// summarise adds the orphans to the summary and the perfdata.
func (c *orphanCheck) summarise() {
	if c.orphans == 0 {
		return
	}
	msg := fmt.Sprintf("%s (no longer assigned here; not counted as stale)", words.Count(c.orphans, "orphaned machine", ""))
	if c.old > 0 {
		msg = fmt.Sprintf("%s, %d of them for over %s: purge them", words.Count(c.orphans, "orphaned machine", ""), c.old, daysText(c.warnAfter))
	}
	c.r.Summary = append(c.r.Summary, msg)
	c.r.Perfdata = append(c.r.Perfdata, fmt.Sprintf("orphans=%d;;;0", c.orphans))
}

// daysText is a long age in whole days ("14 days"), a short one as
// words.Age shows it.
func daysText(d time.Duration) string {
	if d < 48*time.Hour {
		return words.Age(d)
	}
	return fmt.Sprintf("%d days", d/(24*time.Hour))
}
