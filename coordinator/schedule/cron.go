package schedule

import (
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The cron dialect is croniter's (the library turku-api calls with
// hash_id=str(source.id)), restricted to what a backup schedule needs:
// 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds
// last (croniter's own expansion of the @aliases when hashed); lists, ranges,
// steps, month and weekday names, "?" and "l" (last day of month); and the
// Jenkins-style "H", "H(a-b)", "H/n", "H(a-b)/n" (hashed on the source id)
// and "R..." (random) fields. Not supported, and reported as errors: the
// 7-field form with years, "#" and "l<n>" in day-of-week, and "w" (nearest
// weekday). The hashed step forms follow current croniter; croniter 1.3
// (Debian bookworm) picked the start of "H/n" from 0..n instead of 0..n-1.

// Field indexes, as croniter numbers them; the hash of field i is shifted
// right by i bits.
const (
	fMinute = iota
	fHour
	fDom
	fMonth
	fDow
	fSecond
)

var fieldRange = [6][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 6}, {0, 59}}

// lenMeansAll is how many values make a field equivalent to "*".
var lenMeansAll = [6]int{60, 24, 31, 12, 7, 60}

// cronAliases are croniter's expansions of the @ forms when a hash id is
// given (turku-api always gives one).
var cronAliases = map[string]string{
	"@midnight": "h h(0-2) * * * h",
	"@hourly":   "h * * * * h",
	"@daily":    "h h * * * h",
	"@weekly":   "h h * * h h",
	"@monthly":  "h h h * * h",
	"@yearly":   "h h h h * h",
	"@annually": "h h h h * h",
}

var alphaConv = [6]map[string]string{
	fDom: {"l": "l"},
	fMonth: {"jan": "1", "feb": "2", "mar": "3", "apr": "4", "may": "5", "jun": "6",
		"jul": "7", "aug": "8", "sep": "9", "oct": "10", "nov": "11", "dec": "12"},
	fDow: {"sun": "0", "mon": "1", "tue": "2", "wed": "3", "thu": "4", "fri": "5", "sat": "6"},
}

var (
	hashRe       = regexp.MustCompile(`^(h|r)(\((\d+)-(\d+)\))?(/(\d+))?$`)
	stepSearchRe = regexp.MustCompile(`^([^-]+)-([^-/]+)(/(\d+))?$`)
	starStepRe   = regexp.MustCompile(`^\*(/.+)$`)
	slashRe      = regexp.MustCompile(`^(.+)/(.+)$`)
	onlyIntRe    = regexp.MustCompile(`^\d+$`)
	starOrIntRe  = regexp.MustCompile(`^(\d+|\*)$`)
)

// maxYears is how far croniter looks for a match before giving up.
const maxYears = 50

// maxHashNumber bounds the numbers in a hashed field; maxStep caps a step,
// which changes nothing (any step beyond a field's width selects one value)
// but keeps the loops from overflowing.
const (
	maxHashNumber = 1_000_000
	maxStep       = 1000
)

// cronSpec is a syntactically checked cron expression; hashed fields are
// resolved per source by compile.
type cronSpec struct {
	expr   string   // as written after "cron "
	fields []string // lowercased, aliases expanded
}

// cronSchedule is a cronSpec resolved for one source id.
type cronSchedule struct {
	set     [6]uint64 // bit v set when value v matches
	star    [6]bool   // field unconstrained
	domLast bool      // "l" in day-of-month
	seconds bool      // 6-field form
}

func parseCron(expr string) (*cronSpec, error) {
	efl := strings.ToLower(expr)
	if a, ok := cronAliases[efl]; ok {
		efl = a
	}
	fields := strings.Fields(efl)
	switch len(fields) {
	case 5, 6:
	case 7:
		return nil, errors.New("the 7-field form (with years) is not supported")
	default:
		return nil, errors.New("exactly 5 or 6 fields are required")
	}
	spec := &cronSpec{expr: expr, fields: fields}
	// Check the syntax once; only a hashed start beyond a range's end can
	// still fail for a particular id.
	if _, err := spec.compile(""); err != nil {
		return nil, err
	}
	return spec, nil
}

func (c *cronSpec) compile(id string) (*cronSchedule, error) {
	s := &cronSchedule{seconds: len(c.fields) == 6}
	if !s.seconds {
		s.set[fSecond] = 1 // second 0 only
	}
	crc := crc32.ChecksumIEEE([]byte(id))
	for i, expr := range c.fields {
		if err := s.expandField(i, expr, crc, c.fields); err != nil {
			return nil, fmt.Errorf("field %d %q: %w", i+1, expr, err)
		}
	}
	return s, nil
}

// hashValue is croniter's HashExpander.do.
func hashValue(idx int, random bool, crc uint32, begin, end int) int {
	if random {
		crc = rand.Uint32()
	}
	return int((crc>>idx)%uint32(end-begin+1)) + begin
}

// expandHash rewrites a whole-field hash expression into plain cron syntax,
// as croniter's HashExpander.expand does.
func expandHash(idx int, expr string, crc uint32) (string, error) {
	m := hashRe.FindStringSubmatch(expr)
	if m == nil {
		return expr, nil
	}
	random := m[1] == "r"
	lo, hi := fieldRange[idx][0], fieldRange[idx][1]
	hasRange, hasStep := m[3] != "", m[6] != ""
	var a, b, n int
	var err error
	if hasRange {
		if a, err = strconv.Atoi(m[3]); err != nil {
			return "", fmt.Errorf("range begin: %w", err)
		}
		if b, err = strconv.Atoi(m[4]); err != nil {
			return "", fmt.Errorf("range end: %w", err)
		}
		if a >= b {
			return "", errors.New("range end must be greater than range begin")
		}
	}
	if hasStep {
		if n, err = strconv.Atoi(m[6]); err != nil || n == 0 {
			return "", fmt.Errorf("bad step %q", m[6])
		}
	}
	if a > maxHashNumber || b > maxHashNumber || n > maxHashNumber {
		// Far outside any field; refused so the hash arithmetic below
		// cannot overflow.
		return "", errors.New("number too large")
	}
	switch {
	case hasRange && hasStep: // H(30-59)/10 -> 34-59/10
		x := hashValue(idx, random, crc, a, n-1+a)
		return fmt.Sprintf("%d-%d/%d", x, b, n), nil
	case hasRange: // H(0-29) -> 12
		return strconv.Itoa(hashValue(idx, random, crc, a, b)), nil
	case hasStep: // H/15 -> 7-59/15
		x := hashValue(idx, random, crc, lo, n-1+lo)
		return fmt.Sprintf("%d-%d/%d", x, hi, n), nil
	default: // H -> 32
		return strconv.Itoa(hashValue(idx, random, crc, lo, hi)), nil
	}
}

func (s *cronSchedule) expandField(idx int, expr string, crc uint32, exprs []string) error {
	expr, err := expandHash(idx, expr, crc)
	if err != nil {
		return err
	}
	if strings.Contains(expr, "?") {
		if expr != "?" {
			return errors.New("a question mark cannot be combined with anything")
		}
		if idx != fDom && idx != fDow {
			return errors.New("a question mark is only allowed in day-of-month or day-of-week")
		}
		expr = "*"
	}
	for _, e := range strings.Split(expr, ",") {
		if err := s.element(idx, e, len(exprs)); err != nil {
			return err
		}
	}
	count := bits.OnesCount64(s.set[idx])
	if s.star[idx] {
		count++
	}
	if idx == fDom && s.domLast {
		count++
	}
	if count == lenMeansAll[idx] {
		// croniter keeps a full day list when the other day field has no
		// "*", so that the two are still OR-ed as cron does.
		keep := (idx == fDom && !strings.Contains(exprs[fDow], "*")) ||
			(idx == fDow && !strings.Contains(exprs[fDom], "*"))
		if !keep {
			s.star[idx] = true
		}
	}
	return nil
}

func alpha(idx int, key string) (string, error) {
	if v, ok := alphaConv[idx][key]; ok {
		return v, nil
	}
	return "", fmt.Errorf("%q is not acceptable", key)
}

// alias is croniter's value_alias: day-of-week 7 is Sunday in the 5-field
// form, day-of-month 0 is 1 in the 6-field form.
func alias(idx, v, nfields int) int {
	switch {
	case idx == fDow && v == 7 && nfields == 5:
		return 0
	case idx == fDom && v == 0 && nfields == 6:
		return 1
	}
	return v
}

func (s *cronSchedule) element(idx int, e string, nfields int) error {
	lo, hi := fieldRange[idx][0], fieldRange[idx][1]
	t := e
	if m := starStepRe.FindStringSubmatch(e); m != nil {
		t = fmt.Sprintf("%d-%d%s", lo, hi, m[1])
	}
	m := stepSearchRe.FindStringSubmatch(t)
	if m == nil {
		if sm := slashRe.FindStringSubmatch(e); sm != nil {
			t = fmt.Sprintf("%s-%d/%s", sm[1], hi, sm[2])
			m = stepSearchRe.FindStringSubmatch(t)
		}
	}
	if m == nil {
		return s.single(idx, t, nfields)
	}

	low, high, stepText := m[1], m[2], m[4]
	if stepText == "" {
		stepText = "1"
	}
	if idx == fDom && high == "l" {
		high = "31"
	}
	var err error
	if !onlyIntRe.MatchString(low) {
		if low, err = alpha(idx, low); err != nil {
			return err
		}
	}
	if !onlyIntRe.MatchString(high) {
		if high, err = alpha(idx, high); err != nil {
			return err
		}
	}
	step, err := strconv.Atoi(stepText)
	if err != nil || step == 0 {
		return fmt.Errorf("step %q is not acceptable", stepText)
	}
	step = min(step, maxStep)
	if !onlyIntRe.MatchString(low) || !onlyIntRe.MatchString(high) {
		return fmt.Errorf("bands %q-%q are not acceptable", low, high)
	}
	l, err1 := strconv.Atoi(low)
	h, err2 := strconv.Atoi(high)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bands %q-%q are not acceptable", low, high)
	}
	l, h = alias(idx, l, nfields), alias(idx, h, nfields)
	if max(l, h) > hi {
		return fmt.Errorf("%q is out of bands", e)
	}

	var values []int
	switch {
	case l > h:
		// A range that wraps (e.g. fri-mon): low..max, then min.. high,
		// skipping as croniter does to keep the step.
		for v := l; v <= hi; v += step {
			values = append(values, v)
		}
		skip := 0
		if len(values) > 0 {
			last := values[len(values)-1]
			alreadySkipped := hi - last
			curpos := last - lo
			if curpos+step > hi-lo+1 && alreadySkipped < step {
				skip = step - alreadySkipped
			}
		}
		for v := lo + skip; v <= h; v += step {
			values = append(values, v)
		}
	case l == h:
		// croniter reads "5-5" (or "sun-sun") as the whole cycle.
		for v := lo; v <= hi; v += step {
			values = append(values, v)
		}
	default:
		for v := l; v <= h; v += step {
			values = append(values, v)
		}
	}
	for _, v := range values {
		if err := s.value(idx, alias(idx, v, nfields)); err != nil {
			return err
		}
	}
	return nil
}

func (s *cronSchedule) single(idx int, t string, nfields int) error {
	if strings.HasPrefix(t, "-") {
		return errors.New("negative numbers are not allowed")
	}
	if !starOrIntRe.MatchString(t) {
		var err error
		if t, err = alpha(idx, t); err != nil {
			return err
		}
	}
	switch t {
	case "*":
		s.star[idx] = true
		return nil
	case "l":
		s.domLast = true
		return nil
	}
	v, err := strconv.Atoi(t)
	if err != nil {
		return fmt.Errorf("%q is not acceptable", t)
	}
	return s.value(idx, alias(idx, v, nfields))
}

func (s *cronSchedule) value(idx, v int) error {
	if v < fieldRange[idx][0] || v > fieldRange[idx][1] {
		return fmt.Errorf("value %d is out of range", v)
	}
	s.set[idx] |= 1 << v
	return nil
}

func (s *cronSchedule) has(idx, v int) bool {
	return s.star[idx] || s.set[idx]&(1<<v) != 0
}

// dayMode says which day fields a search honours.
type dayMode int

const (
	daysBoth dayMode = iota // both fields (an unrestricted one matches all)
	daysDom                 // day-of-month only, day-of-week as "*"
	daysDow                 // day-of-week only, day-of-month as "*"
)

// matchDay reports whether the civil date d (a UTC midnight) matches the
// month field and the day fields selected by mode.
func (s *cronSchedule) matchDay(d time.Time, mode dayMode) bool {
	if !s.has(fMonth, int(d.Month())) {
		return false
	}
	dom, dow := true, true
	if mode != daysDow {
		lastDay := time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
		dom = s.has(fDom, d.Day()) || (s.domLast && d.Day() == lastDay)
	}
	if mode != daysDom {
		dow = s.has(fDow, int(d.Weekday()))
	}
	return dom && dow
}

// matchTime returns the first matching time of day on d at or after
// h0:m0:s0.
func (s *cronSchedule) matchTime(d time.Time, h0, m0, s0 int) (time.Time, bool) {
	for h := h0; h < 24; h++ {
		if !s.has(fHour, h) {
			continue
		}
		mStart := 0
		if h == h0 {
			mStart = m0
		}
		for m := mStart; m < 60; m++ {
			if !s.has(fMinute, m) {
				continue
			}
			sStart := 0
			if h == h0 && m == m0 {
				sStart = s0
			}
			for sec := sStart; sec < 60; sec++ {
				if s.has(fSecond, sec) {
					return time.Date(d.Year(), d.Month(), d.Day(), h, m, sec, 0, time.UTC), true
				}
			}
		}
	}
	return time.Time{}, false
}

// search returns the first matching wall-clock time (in UTC clothing) at or
// after start, looking no further than croniter does.
//
// When both day fields are restricted, a day matching either is enough
// (croniter's day_or=True, as in cron). croniter computes that as the
// earlier of two searches, one per day field, and fails when either finds
// nothing (so "0 0 30 2 mon" is an error, not "every Monday in February").
func (s *cronSchedule) search(start time.Time) (time.Time, bool) {
	if s.star[fDom] || s.star[fDow] {
		return s.searchDays(start, daysBoth)
	}
	t1, ok1 := s.searchDays(start, daysDom)
	t2, ok2 := s.searchDays(start, daysDow)
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	if t2.Before(t1) {
		return t2, true
	}
	return t1, true
}

func (s *cronSchedule) searchDays(start time.Time, mode dayMode) (time.Time, bool) {
	h0, m0, s0 := start.Clock()
	d := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.UTC)
	for ; d.Year() <= start.Year()+maxYears; d = d.AddDate(0, 0, 1) {
		if s.matchDay(d, mode) {
			if t, ok := s.matchTime(d, h0, m0, s0); ok {
				return t, true
			}
		}
		h0, m0, s0 = 0, 0, 0
	}
	return time.Time{}, false
}

// next is croniter(expr, start_time=base, hash_id=id).get_next(datetime)
// followed by turku-api's .replace(second=hashedint(0, 59, id)).
func (c *cronSpec) next(base time.Time, loc *time.Location, id string) (time.Time, error) {
	s, err := c.compile(id)
	if err != nil {
		return time.Time{}, fmt.Errorf("cron expression %q: %w", c.expr, err)
	}
	// croniter works on the wall clock: the next match strictly after
	// base's minute (or second, in the 6-field form).
	wall := time.Date(base.Year(), base.Month(), base.Day(), base.Hour(), base.Minute(), base.Second(), 0, time.UTC)
	if s.seconds {
		wall = wall.Add(time.Second)
	} else {
		wall = wall.Truncate(time.Minute).Add(time.Minute)
	}
	for {
		w, ok := s.search(wall)
		if !ok {
			return time.Time{}, fmt.Errorf("cron expression %q: no matching time within %d years", c.expr, maxYears)
		}
		t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, loc)
		// A wall time repeated or skipped by a DST change can land at or
		// before base; look further.
		if t.After(base) {
			return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), Hash(0, 59, id), 0, loc), nil
		}
		wall = w.Add(time.Second)
	}
}
