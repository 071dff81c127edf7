package web

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/monitor"
)

// Machine and source states, worst first: the order of the overview's
// default sort, and the values of its state filter.
const (
	StateStale   = "stale"   // past the maximum age (check: CRITICAL)
	StateNever   = "never"   // never backed up
	StateFailing = "failing" // the last attempt failed, still within the maximum age
	StateWarning = "warning" // past the warning age
	StateOrphan  = "orphan"  // on disk or in the history, no longer assigned here
	StateOK      = "ok"
)

// States lists the states, worst first.
var States = []string{StateStale, StateNever, StateFailing, StateWarning, StateOrphan, StateOK}

func stateRank(s string) int { return slices.Index(States, s) }

// Overview is the document behind / and /api/overview.
type Overview struct {
	Name    string    `json:"name"`
	Now     time.Time `json:"now"`
	MaxAge  string    `json:"max_age"`
	WarnAge string    `json:"warn_age,omitempty"`
	// Counts are the machines in each state, of every machine.
	Counts   []StateCount `json:"counts"`
	Machines int          `json:"machines"`
	Query    Query        `json:"query"`
	// Matching is how many machines the query selects; Page lists
	// those of page Query.Page of Pages.
	Matching int              `json:"matching"`
	Pages    int              `json:"pages"`
	Page     []MachineRow     `json:"page"`
	Running  Running          `json:"running"`
	Volumes  []monitor.Volume `json:"volumes"`
	Keys     Keys             `json:"keys"`
	// ReportsSpooled counts the reports waiting in VAR_DIR/reports.
	ReportsSpooled int `json:"reports_spooled"`
	// DiskRead is when the snapshots on disk were last read in full;
	// zero while the first read runs (counts and sizes are then
	// unknown).
	DiskRead time.Time `json:"disk_read,omitzero"`
}

// StateCount is how many machines are in a state.
type StateCount struct {
	State string `json:"state"`
	Count int    `json:"count"`
}

// Keys is where the machine keys in use came from and when.
type Keys struct {
	Machines  int        `json:"machines"`
	From      string     `json:"from,omitempty"`
	Updated   *time.Time `json:"updated,omitempty"`
	Refreshed *time.Time `json:"last_refresh,omitempty"`
}

// MachineRow is one machine in the overview.
type MachineRow struct {
	UUID  string   `json:"uuid"`
	Unit  string   `json:"unit,omitempty"`
	Names []string `json:"names,omitempty"`
	State string   `json:"state"`
	// Assigned is whether the last key refresh listed it; AssignedSince
	// when this unit first saw it there.
	Assigned      bool      `json:"assigned"`
	AssignedSince time.Time `json:"assigned_since,omitzero"`
	// OrphanedSince is when a key refresh first found it on disk and not
	// assigned here (turku-storage orphans); zero otherwise.
	OrphanedSince time.Time     `json:"orphaned_since,omitzero"`
	Sources       []SourceRow   `json:"sources"`
	Error         string        `json:"disk_error,omitempty"`
	age           time.Duration // the oldest source's, for sorting
	size          int64
	sortName      string // Unit in lower case
}

// SourceRow is one source of a machine.
type SourceRow struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// LastSuccess is zero when it never succeeded; Age is the staleness
	// clock's (from the last success, else the first attempt).
	LastSuccess time.Time     `json:"last_success,omitzero"`
	Age         time.Duration `json:"age_ns"`
	// LastResult is "success", "failure" or "" (unknown); a failure's
	// Failures in a row and Error, the summary's first line.
	LastResult  string    `json:"last_result,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	Failures    int       `json:"consecutive_failures,omitempty"`
	Error       string    `json:"error,omitempty"`
	// Snapshots on disk and the bytes they hold (-1: unknown).
	Snapshots int   `json:"snapshots"`
	Bytes     int64 `json:"bytes"`
	Running   bool  `json:"running,omitempty"`
}

// Query is the overview's selection, from its URL's query parameters.
type Query struct {
	Q     string `json:"q,omitempty"`     // part of a UUID, unit or link name
	State string `json:"state,omitempty"` // one of States
	Sort  string `json:"sort"`            // state, name, age, size
	Page  int    `json:"page"`            // from 1
}

var sorts = []string{"state", "name", "age", "size"}

// maxQuery bounds the name filter.
const maxQuery = 200

// parseQuery reads the query parameters. A value it does not know is an
// error naming the parameter and what it takes, not a silent default: a
// mistyped filter must not look like an empty result.
func parseQuery(v url.Values) (Query, error) {
	q := Query{Q: strings.TrimSpace(v.Get("q")), State: v.Get("state"), Sort: cmp.Or(v.Get("sort"), "state"), Page: 1}
	if len(q.Q) > maxQuery {
		return q, fmt.Errorf("q: longer than %d bytes", maxQuery)
	}
	if q.State != "" && !slices.Contains(States, q.State) {
		return q, fmt.Errorf("state %q: want one of %s", q.State, strings.Join(States, ", "))
	}
	if !slices.Contains(sorts, q.Sort) {
		return q, fmt.Errorf("sort %q: want one of %s", q.Sort, strings.Join(sorts, ", "))
	}
	if p := v.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return q, fmt.Errorf("page %q: want a number from 1", p)
		}
		q.Page = n
	}
	return q, nil
}

// URL is the overview's address for q with page replaced.
func (q Query) URL(page int) string {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.State != "" {
		v.Set("state", q.State)
	}
	if q.Sort != "state" {
		v.Set("sort", q.Sort)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// WithState is the overview's address selecting state, first page.
func (q Query) WithState(state string) string {
	q.State = state
	return q.URL(1)
}

// overview builds the document for q.
func (s *Server) overview(q Query) Overview {
	now := s.opts.Now()
	st := s.opts.State.Status()
	rule := s.opts.Staleness
	ov := Overview{Name: s.opts.Name, Now: now, MaxAge: rule.MaxAge.String(), Query: q,
		Running: running(st), Volumes: st.Volumes, ReportsSpooled: st.SpooledReports,
		Keys: Keys{Machines: st.Keys.Machines, From: st.Keys.From, Updated: timeOrNil(st.Keys.Updated), Refreshed: timeOrNil(st.Keys.Refreshed)}}
	if rule.WarnAge > 0 {
		ov.WarnAge = rule.WarnAge.String()
	}
	disk, read := s.disk.snapshot()
	ov.DiskRead = read
	rows := s.machineRows(now, disk, backups(st), "")
	ov.Machines = len(rows)
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.State]++
	}
	for _, state := range States {
		ov.Counts = append(ov.Counts, StateCount{State: state, Count: counts[state]})
	}
	rows = slices.DeleteFunc(rows, func(r MachineRow) bool { return !q.matches(r) })
	sortRows(rows, q.Sort)
	ov.Matching = len(rows)
	size := s.opts.PageSize
	ov.Pages = max(1, (len(rows)+size-1)/size)
	ov.Query.Page = min(q.Page, ov.Pages)
	first := (ov.Query.Page - 1) * size
	ov.Page = rows[first:min(first+size, len(rows))]
	return ov
}

func (q Query) matches(r MachineRow) bool {
	if q.State != "" && r.State != q.State {
		return false
	}
	if q.Q == "" {
		return true
	}
	needle := strings.ToLower(q.Q)
	if strings.Contains(strings.ToLower(r.UUID), needle) || strings.Contains(strings.ToLower(r.Unit), needle) {
		return true
	}
	return slices.ContainsFunc(r.Names, func(n string) bool { return strings.Contains(strings.ToLower(n), needle) })
}

func sortRows(rows []MachineRow, by string) {
	for i := range rows {
		rows[i].sortName = strings.ToLower(rows[i].Unit)
	}
	name := func(a, b *MachineRow) int {
		if c := strings.Compare(a.sortName, b.sortName); c != 0 {
			return c
		}
		return strings.Compare(a.UUID, b.UUID)
	}
	slices.SortFunc(rows, func(a, b MachineRow) int {
		switch by {
		case "name":
		case "age":
			if c := cmp.Compare(b.age, a.age); c != 0 {
				return c
			}
		case "size":
			if c := cmp.Compare(b.size, a.size); c != 0 {
				return c
			}
		default: // worst first, then oldest
			if c := cmp.Compare(stateRank(a.State), stateRank(b.State)); c != 0 {
				return c
			}
			if c := cmp.Compare(b.age, a.age); c != 0 {
				return c
			}
		}
		return name(&a, &b)
	})
}

// machineRows merges the machines assigned here, the sources the live
// state knows and what the disk holds, and rates each; only that machine
// when only is set.
func (s *Server) machineRows(now time.Time, disk map[string]diskMachine, backups []monitor.Backup, only string) []MachineRow {
	assigned, assignedKnown := s.opts.State.Assigned()
	sources := s.opts.State.Sources()
	runningNow := map[[2]string]bool{}
	for _, b := range backups {
		runningNow[[2]string{b.Machine, b.Source}] = true
	}
	byUUID := map[string]*MachineRow{}
	row := func(uuid string) *MachineRow {
		r := byUUID[uuid]
		if r == nil {
			r = &MachineRow{UUID: uuid}
			byUUID[uuid] = r
		}
		return r
	}
	for uuid, a := range assigned {
		if only != "" && uuid != only {
			continue
		}
		r := row(uuid)
		r.Unit, r.Assigned, r.AssignedSince = a.Unit, true, a.Since
	}
	for uuid, o := range s.opts.State.Orphans() {
		if only != "" && uuid != only {
			continue
		}
		r := row(uuid)
		r.OrphanedSince = o.Since
		if r.Unit == "" {
			r.Unit = o.Unit
		}
	}
	rule := s.opts.Staleness
	live := map[[2]string]bool{}
	for _, src := range sources {
		if only != "" && src.Machine != only {
			continue
		}
		r := row(src.Machine)
		if r.Unit == "" {
			r.Unit = src.Unit
		}
		live[[2]string{src.Machine, src.Source}] = true
		sr := SourceRow{Name: src.Source, LastSuccess: src.LastSuccess, LastAttempt: src.LastAttempt, Bytes: -1,
			Running: runningNow[[2]string{src.Machine, src.Source}]}
		switch {
		case src.Failures > 0:
			sr.LastResult, sr.Failures, sr.Error = "failure", src.Failures, src.LastError
		case !src.LastSuccess.IsZero():
			sr.LastResult = "success"
		}
		first := cmp.Or(src.FailingSince, src.FirstSeen)
		var level history.Level
		level, sr.Age = rule.Rate(history.Since(src.LastSuccess, first), now)
		sr.State = sourceState(level, sr)
		if dm, ok := disk[src.Machine]; ok {
			ds, ok := dm.Sources[src.Source]
			if ok {
				sr.Snapshots, sr.Bytes = ds.Snapshots, ds.Bytes
			}
		}
		r.Sources = append(r.Sources, sr)
	}
	for uuid, dm := range disk {
		if only != "" && uuid != only {
			continue
		}
		r := row(uuid)
		r.Names, r.Error = dm.Names, dm.Err
		for name, ds := range dm.Sources {
			if live[[2]string{uuid, name}] {
				continue
			}
			// On disk, unknown to the live state (a working tree that
			// never became a snapshot): rated by its newest snapshot.
			sr := SourceRow{Name: name, LastSuccess: ds.Newest, Snapshots: ds.Snapshots, Bytes: ds.Bytes}
			if !ds.Newest.IsZero() {
				sr.LastResult = "success"
			}
			var level history.Level
			level, sr.Age = rule.Rate(ds.Newest, now)
			sr.State = sourceState(level, sr)
			r.Sources = append(r.Sources, sr)
		}
	}
	out := make([]MachineRow, 0, len(byUUID))
	for _, r := range byUUID {
		if r.Sources == nil {
			r.Sources = []SourceRow{}
		}
		slices.SortFunc(r.Sources, func(a, b SourceRow) int { return cmp.Compare(a.Name, b.Name) })
		r.State = machineState(r, assignedKnown, rule, now)
		for _, sr := range r.Sources {
			r.age = max(r.age, sr.Age)
			if sr.Bytes > 0 {
				r.size += sr.Bytes
			}
		}
		if len(r.Sources) == 0 && !r.AssignedSince.IsZero() {
			r.age = now.Sub(r.AssignedSince)
		}
		out = append(out, *r)
	}
	return out
}

func sourceState(level history.Level, sr SourceRow) string {
	switch {
	case level == history.Critical:
		return StateStale
	case sr.LastSuccess.IsZero():
		return StateNever
	case sr.LastResult == "failure":
		return StateFailing
	case level == history.Warning:
		return StateWarning
	}
	return StateOK
}

// machineState is the worst of a machine's sources; a machine without a
// source never backed up (stale once assigned longer than the maximum
// age); one no longer assigned here is an orphan whatever its sources.
func machineState(r *MachineRow, assignedKnown bool, rule history.Staleness, now time.Time) string {
	if assignedKnown && !r.Assigned {
		return StateOrphan
	}
	if len(r.Sources) == 0 {
		if level, _ := rule.Rate(r.AssignedSince, now); level == history.Critical {
			return StateStale
		}
		return StateNever
	}
	worst := StateOK
	for _, sr := range r.Sources {
		if stateRank(sr.State) < stateRank(worst) {
			worst = sr.State
		}
	}
	return worst
}

// Running is the source backups running and waiting for a slot, as the
// live state lists them (oldest first).
type Running struct {
	Now     time.Time        `json:"now"`
	Running []monitor.Backup `json:"running"`
	Waiting []monitor.Backup `json:"waiting"`
}

func running(st monitor.Status) Running {
	return Running{Now: st.Now, Running: st.Backups, Waiting: st.Waiting}
}

// backups are the source backups running or waiting.
func backups(st monitor.Status) []monitor.Backup {
	return append(slices.Clip(st.Backups), st.Waiting...)
}

// timeOrNil is t, or nil for the zero time.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		s.render(w, r, "error.html", http.StatusBadRequest, errorPage{Name: s.opts.Name, Title: "Bad request", Message: err.Error()})
		return
	}
	s.render(w, r, "overview.html", http.StatusOK, s.overview(q))
}

func (s *Server) overviewJSON(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, r, s.overview(q))
}

func (s *Server) runningJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, running(s.opts.State.Status()))
}
