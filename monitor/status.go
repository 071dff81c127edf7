package monitor

import (
	"cmp"
	"slices"
	"time"
)

// Status is the live state at one moment, with the names of the
// document `turku-storage status --json` prints (the control socket adds
// what only serve knows: its name, version, start and slots). Operators script
// against these names: add fields, never rename or drop one.
type Status struct {
	Now time.Time `json:"now"`
	// Agents are the connected agents with a running session.
	Agents []Session `json:"agents"`
	// Backups are the sources whose rsync runs now.
	Backups []Backup `json:"backups"`
	// Waiting are the sources waiting for a max_concurrent_backups slot.
	Waiting []Backup `json:"waiting"`
	// Restores are the agents in restore mode, with their ports.
	Restores []Session `json:"restores"`
	Keys     Keys      `json:"keys"`
	// SpooledReports counts the reports waiting in VAR_DIR/reports for
	// the API.
	SpooledReports int `json:"spooled_reports"`
	// Failing are the sources whose last attempt failed, longest failing
	// first.
	Failing []SourceStatus `json:"failing"`
	Volumes []Volume       `json:"volumes"`
	// Orphans are the machines with data here that the coordinator no
	// longer assigns here, longest orphaned first.
	Orphans []OrphanStatus `json:"orphans"`
}

// Session is a connected agent's session.
type Session struct {
	Machine string    `json:"machine"`
	Unit    string    `json:"unit,omitempty"`
	Remote  string    `json:"remote"`
	Mode    string    `json:"mode"` // ModeCheckin or ModeRestore
	Since   time.Time `json:"since"`
	// AgentPort is the PORT the agent forwarded.
	AgentPort int `json:"agent_port"`
	// RestorePort is set for restore sessions: the local port the
	// operator's rsync connects to.
	RestorePort int `json:"restore_port,omitempty"`
}

// Backup is a source backup running or waiting for a slot.
type Backup struct {
	Machine string `json:"machine"`
	Unit    string `json:"unit,omitempty"`
	Source  string `json:"source"`
	State   string `json:"state"` // PhaseRunning or PhaseWaiting
	// Since is when rsync started (running) or when the wait began.
	Since          time.Time `json:"since"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
	// Bytes received from the agent through the tunnel since rsync
	// started, and their mean rate; running backups only.
	Bytes          int64   `json:"bytes"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	// Files is how many files rsync transferred so far (its --verbose
	// file lines: new or changed files, directories not counted); nil
	// while waiting.
	Files *int64 `json:"files,omitempty"`
}

// Keys is the machine key set in use.
type Keys struct {
	Machines int `json:"machines"`
	// Updated is when the key set was fetched from the API; zero before
	// any refresh or cache.
	Updated time.Time `json:"updated"`
	// From is KeysFromAPI after a refresh, KeysFromCache when loaded at
	// start; empty before either.
	From string `json:"from,omitempty"`
	// Refreshed is when a refresh from the API last succeeded; zero
	// before the first.
	Refreshed time.Time `json:"refreshed,omitzero"`
}

// Status returns a copy of the live state, every list oldest first. It
// reads the volumes and the report spool, like a scrape does.
func (s *State) Status() Status {
	now := s.opts.Now()
	st := Status{
		Now:      now,
		Agents:   []Session{},
		Backups:  []Backup{},
		Waiting:  []Backup{},
		Restores: []Session{},
		Keys:     Keys{Machines: int(s.machines.Load())},
		Failing:  []SourceStatus{},
		Volumes:  []Volume{},
		Orphans:  s.orphanList(),
	}
	if ns := s.keyRefresh.Load(); ns != 0 {
		st.Keys.Refreshed = time.Unix(0, ns)
	}
	if s.opts.SpooledReports != nil {
		st.SpooledReports = s.opts.SpooledReports()
	}
	if s.opts.Volumes != nil {
		st.Volumes = append(st.Volumes, s.opts.Volumes()...)
	}
	s.mu.Lock()
	st.Keys.From, st.Keys.Updated = s.keysFrom, s.keysUpdated
	for se := range s.sessions {
		ss := se.status()
		st.Agents = append(st.Agents, ss)
		if se.mode == ModeRestore {
			st.Restores = append(st.Restores, ss)
		}
	}
	for k, b := range s.backups {
		e := Backup{Machine: k.machine, Unit: b.unit, Source: k.source, State: b.phase, Since: b.phaseSince,
			ElapsedSeconds: now.Sub(b.phaseSince).Seconds()}
		if b.phase != PhaseRunning {
			st.Waiting = append(st.Waiting, e)
			continue
		}
		e.Bytes = s.machineReceived(k.machine) - b.startBytes
		if b.files != nil {
			n := b.files()
			e.Files = &n
		}
		if e.ElapsedSeconds > 0 {
			e.BytesPerSecond = float64(e.Bytes) / e.ElapsedSeconds
		}
		st.Backups = append(st.Backups, e)
	}
	for k, v := range s.sources {
		if v.failures == 0 {
			continue
		}
		if _, ok := s.assigned[k.machine]; s.assigned != nil && !ok {
			continue // no longer assigned here
		}
		st.Failing = append(st.Failing, v.status(k))
	}
	s.mu.Unlock()
	slices.SortFunc(st.Failing, func(a, b SourceStatus) int {
		return cmp.Or(a.FailingSince.Compare(b.FailingSince), cmp.Compare(a.Machine, b.Machine), cmp.Compare(a.Source, b.Source))
	})
	for _, list := range [][]Session{st.Agents, st.Restores} {
		slices.SortFunc(list, func(a, b Session) int {
			return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Machine, b.Machine))
		})
	}
	for _, list := range [][]Backup{st.Backups, st.Waiting} {
		slices.SortFunc(list, func(a, b Backup) int {
			return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Machine, b.Machine), cmp.Compare(a.Source, b.Source))
		})
	}
	return st
}

// status copies a session; it reads only immutable fields.
func (se *session) status() Session {
	return Session{Machine: se.machine, Unit: se.unit, Remote: se.remote, Mode: se.mode, Since: se.since,
		AgentPort: se.port, RestorePort: se.restorePort}
}

// Counts are the figures systemd's STATUS= line shows.
type Counts struct {
	Machines, Checkins, Restores, Running, Waiting, Spooled int
}

// Counts returns the current counts; of the disk it reads only the
// report spool's directory.
func (s *State) Counts() Counts {
	c := Counts{Machines: int(s.machines.Load())}
	if s.opts.SpooledReports != nil {
		c.Spooled = s.opts.SpooledReports()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for se := range s.sessions {
		if se.mode == ModeRestore {
			c.Restores++
		} else {
			c.Checkins++
		}
	}
	for _, b := range s.backups {
		if b.phase == PhaseRunning {
			c.Running++
		} else {
			c.Waiting++
		}
	}
	return c
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
