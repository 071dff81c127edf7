package history

import "time"

// Level is how a source (or a machine without one) stands against the
// age thresholds.
type Level int

// Levels, from good to bad; check exits with the Nagios status of the
// worst.
const (
	Fresh    Level = iota // within the warning age (or no warning level)
	Warning               // past the warning age
	Critical              // past the maximum age
)

// Staleness is the rule `check --max-age --warn-age` applies and the
// dashboard colours by: a source's clock runs from its last successful
// backup or, if it never succeeded, from when this unit first saw it (its
// first attempt; for a machine with no source at all, when it was first
// assigned here). Past MaxAge it is Critical, past WarnAge (0: no warning
// level) Warning.
type Staleness struct {
	MaxAge, WarnAge time.Duration
}

// Since is when the clock of a source started: lastSuccess, or firstSeen
// when it never succeeded. Zero when neither is known.
func Since(lastSuccess, firstSeen time.Time) time.Time {
	if !lastSuccess.IsZero() {
		return lastSuccess
	}
	return firstSeen
}

// Rate returns the level of a clock started at since, and its age at now.
// A zero since (nothing known) is Fresh.
func (s Staleness) Rate(since, now time.Time) (Level, time.Duration) {
	if since.IsZero() {
		return Fresh, 0
	}
	age := now.Sub(since)
	switch {
	case age > s.MaxAge:
		return Critical, age
	case s.WarnAge > 0 && age > s.WarnAge:
		return Warning, age
	}
	return Fresh, age
}
