package schedule

import (
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"
)

// kind is the first comma-separated word of a frequency.
type kind int

const (
	kindDaily kind = iota // also the fallback for unknown words
	kindHourly
	kindWeekly
	kindWeekday
	kindMonthly
	kindCron
)

// Frequency is a parsed frequency definition. The zero value means "daily".
type Frequency struct {
	kind    kind
	weekday time.Weekday // for kindWeekday

	// Time-of-day window, in seconds after local midnight. hasWindow false
	// means "any second of the day" (hashed over 0..86399); fixed means the
	// window is a single time (no hashing, as turku-api does for ", HHMM").
	hasWindow  bool
	fixed      bool
	start, end int

	cron *cronSpec // for kindCron
}

// weekdays maps turku-api's day names to days; turku-api compares them
// case-sensitively, and so do we.
var weekdays = map[string]time.Weekday{
	"sunday":    time.Sunday,
	"monday":    time.Monday,
	"tuesday":   time.Tuesday,
	"wednesday": time.Wednesday,
	"thursday":  time.Thursday,
	"friday":    time.Friday,
	"saturday":  time.Saturday,
}

// IsCron reports whether s is a cron schedule as turku-api tells one:
// anything starting with "cron".
func IsCron(s string) bool { return strings.HasPrefix(s, "cron") }

// Parse parses a frequency definition as turku-api reads it:
//
//   - anything starting with "cron" is a cron schedule: the rest after the
//     first space is the expression;
//   - otherwise the text is split on commas and each part trimmed; the first
//     part is "hourly", "daily", "weekly", "sunday".."saturday" or "monthly",
//     and any other word falls back to "daily" (turku-api does not reject
//     them, so neither do we);
//   - for everything but "hourly", a second part "HHMM-HHMM" or "HHMM"
//     narrows the time of day. Only the first four characters of each bound
//     are read, as two-digit hours and minutes. Further parts are ignored.
//
// Errors are returned where turku-api would raise (and answer 500): a
// malformed window or cron expression.
func Parse(s string) (Frequency, error) {
	if IsCron(s) {
		expr := ""
		if _, after, ok := strings.Cut(s, " "); ok {
			expr = after
		}
		spec, err := parseCron(expr)
		if err != nil {
			return Frequency{}, fmt.Errorf("cron expression %q: %w", expr, err)
		}
		return Frequency{kind: kindCron, cron: spec}, nil
	}

	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	var f Frequency
	switch w := parts[0]; w {
	case "hourly":
		// turku-api returns before looking at a window.
		return Frequency{kind: kindHourly}, nil
	case "daily":
		f.kind = kindDaily
	case "weekly":
		f.kind = kindWeekly
	case "monthly":
		f.kind = kindMonthly
	default:
		if d, ok := weekdays[w]; ok {
			f.kind, f.weekday = kindWeekday, d
		} else {
			f.kind = kindDaily
		}
	}
	if len(parts) == 1 {
		return f, nil
	}
	if err := f.parseWindow(parts[1]); err != nil {
		return Frequency{}, fmt.Errorf("time window %q: %w", parts[1], err)
	}
	return f, nil
}

func (f *Frequency) parseWindow(w string) error {
	bounds := strings.Split(w, "-")
	start, err := clockSeconds(bounds[0])
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	f.hasWindow, f.start = true, start
	if len(bounds) == 1 {
		f.fixed = true
		return nil
	}
	end, err := clockSeconds(bounds[1])
	if err != nil {
		return fmt.Errorf("end: %w", err)
	}
	if end < start {
		// An end before the start rolls over midnight (turku-api adds a day).
		end += 86400
	}
	if end < start {
		// Only possible with hours beyond 24; turku-api would compute a
		// modulo by a non-positive number here.
		return errors.New("end is before start even across midnight")
	}
	f.end = end
	return nil
}

// clockSeconds reads "HHMM" the way turku-api does: int(s[0:2]) hours plus
// int(s[2:4]) minutes, characters beyond the fourth ignored.
func clockSeconds(s string) (int, error) {
	r := []rune(s)
	hh, err := pyInt(string(r[:min(2, len(r))]))
	if err != nil {
		return 0, fmt.Errorf("hours: %w", err)
	}
	mm, err := pyInt(string(r[min(2, len(r)):min(4, len(r))]))
	if err != nil {
		return 0, fmt.Errorf("minutes: %w", err)
	}
	return hh*3600 + mm*60, nil
}

// pyInt accepts what Python's int() accepts for a string of at most two
// characters of ASCII: optional surrounding whitespace, an optional sign and
// decimal digits.
func pyInt(s string) (int, error) {
	t := strings.TrimSpace(s)
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	if t == "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	n := 0
	for _, c := range []byte(t) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// Hash is turku-api's hashedint: a deterministic stand-in for
// random.randint(a, b), a + crc32(id) mod (b−a+1), with the IEEE CRC-32 of
// the UTF-8 bytes of id. turku-api passes str(source.id), the source's
// primary key UUID in lowercase hyphenated form. b must not be below a.
func Hash(a, b int, id string) int {
	crc := crc32.ChecksumIEEE([]byte(id))
	return int(crc%uint32(b-a+1)) + a
}

// Next returns when a source with the given id is next due, computed from
// base in loc, exactly as turku-api's frequency_next_scheduled does.
//
// Date arithmetic is on the wall clock of loc (as Python's zoneinfo does);
// around a DST change the result may differ by the DST offset from what a
// pytz-based turku-api computes.
func (f Frequency) Next(base time.Time, loc *time.Location, id string) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	base = base.In(loc)
	y, mo, d := base.Date()

	switch f.kind {
	case kindCron:
		return f.cron.next(base, loc, id)
	case kindHourly:
		// Minute and second use the same hash, so they are always equal.
		h := Hash(0, 59, id)
		return time.Date(y, mo, d, base.Hour()+1, h, h, 0, loc), nil
	}

	var day int                                        // days after today
	today := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC) // civil date only
	sinceSunday := int(today.Weekday())
	switch f.kind {
	case kindWeekly:
		// A hashed day of next week; weeks start on Sunday.
		day = 7 - sinceSunday + Hash(0, 6, id)
	case kindWeekday:
		// The next such day; today counts, even if the hashed time of day
		// has already passed (turku-api then makes it due at once).
		day = int(f.weekday) - sinceSunday
		if day < 0 {
			day += 7
		}
	case kindMonthly:
		// turku-api adds hashedint(1, days in next month) days to the 1st
		// of next month: anything from the 2nd of next month to the 1st of
		// the month after.
		next := time.Date(y, mo+1, 1, 0, 0, 0, 0, time.UTC)
		after := time.Date(y, mo+2, 1, 0, 0, 0, 0, time.UTC)
		days := int(after.Sub(next).Hours() / 24)
		day = int(next.Sub(today).Hours()/24) + Hash(1, days, id)
	default: // daily and the fallback
		day = 1
	}

	var sec int
	switch {
	case !f.hasWindow:
		sec = Hash(0, 86399, id)
	case f.fixed:
		sec = f.start
	default:
		sec = Hash(f.start, f.end, id)
	}
	return time.Date(y, mo, d+day, 0, 0, sec, 0, loc), nil
}

// String describes the parsed frequency, for logs and tests.
func (f Frequency) String() string {
	var s string
	switch f.kind {
	case kindCron:
		return "cron " + f.cron.expr
	case kindHourly:
		return "hourly"
	case kindWeekly:
		s = "weekly"
	case kindWeekday:
		s = strings.ToLower(f.weekday.String())
	case kindMonthly:
		s = "monthly"
	default:
		s = "daily"
	}
	switch {
	case !f.hasWindow:
	case f.fixed:
		s += fmt.Sprintf(", at %ds", f.start)
	default:
		s += fmt.Sprintf(", %ds-%ds", f.start, f.end)
	}
	return s
}
