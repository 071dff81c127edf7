package monitor

import (
	"cmp"
	"slices"
	"time"
)

// Status is a point-in-time copy of the live state; the control socket
// arranges it into the document `status --json` prints.
type Status struct {
	Time         time.Time  `json:"time"`
	Machines     int        `json:"machines"`
	KeyRefreshed *time.Time `json:"key_refreshed,omitempty"`
	// KeysFrom is where the keys in use came from (KeysFromAPI,
	// KeysFromCache; empty before either), KeysUpdated when the API sent
	// them.
	KeysFrom           string           `json:"keys_from,omitempty"`
	KeysUpdated        *time.Time       `json:"keys_updated,omitempty"`
	ReportsSpooled     int              `json:"reports_spooled"`
	ReceivedBytes      int64            `json:"received_bytes"`
	BackupsSucceeded   int64            `json:"backups_succeeded"`
	BackupsFailed      int64            `json:"backups_failed"`
	AuthFailures       int64            `json:"ssh_auth_failures"`
	ConnectionsDropped map[string]int64 `json:"ssh_connections_dropped"`
	Sessions           []SessionStatus  `json:"sessions"`
	Backups            []BackupStatus   `json:"backups"`
	// Failing are the sources whose last attempt failed.
	Failing []FailingSource `json:"failing"`
	Volumes []VolumeUsage   `json:"volumes"`
	// Orphans are the machines with data here no longer assigned here.
	Orphans []OrphanStatus `json:"orphans"`
}

// FailingSource is a source whose last backup attempt failed.
type FailingSource struct {
	Machine string `json:"machine"`
	Unit    string `json:"unit"`
	Source  string `json:"source"`
	// Failures in a row, the first beginning at FailingSince.
	Failures     int       `json:"consecutive_failures"`
	FailingSince time.Time `json:"failing_since"`
	LastAttempt  time.Time `json:"last_attempt"`
	// LastSuccess is zero if the source never succeeded.
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error"`
}

// SessionStatus is one connected agent's session.
type SessionStatus struct {
	Mode    string `json:"mode"`
	Machine string `json:"machine"`
	Unit    string `json:"unit"`
	Remote  string `json:"remote"`
	Port    int    `json:"port"` // the agent's forwarded PORT
	// RestorePort is, for a restore session, the local port the
	// operator's rsync connects to.
	RestorePort   int       `json:"restore_port,omitempty"`
	Since         time.Time `json:"since"`
	ReceivedBytes int64     `json:"received_bytes"`
}

// BackupStatus is one source backup running or waiting for a slot.
type BackupStatus struct {
	Machine string        `json:"machine"`
	Unit    string        `json:"unit"`
	Source  string        `json:"source"`
	Phase   string        `json:"phase"` // PhaseWaiting or PhaseRunning
	Since   time.Time     `json:"since"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// PhaseSince is when it entered Phase: when it began to wait, or
	// when rsync started.
	PhaseSince time.Time `json:"phase_since"`
	// ReceivedBytes is what the machine's tunnel carried since rsync
	// started (0 while waiting).
	ReceivedBytes int64 `json:"received_bytes"`
	// Files is how many files rsync transferred so far (its --verbose
	// file lines: new or changed files); nil while waiting.
	Files *int64 `json:"files,omitempty"`
}

// Status returns a copy of the live state. It reads the volumes and the
// report spool, like a scrape does.
func (s *State) Status() Status {
	now := s.opts.Now()
	st := Status{
		Time:               now,
		Machines:           int(s.machines.Load()),
		ReceivedBytes:      s.received.Load(),
		AuthFailures:       s.authFailures.Load(),
		ConnectionsDropped: map[string]int64{},
		Sessions:           []SessionStatus{},
		Backups:            []BackupStatus{},
		Failing:            []FailingSource{},
		Volumes:            []VolumeUsage{},
		Orphans:            s.orphanList(),
	}
	if ns := s.keyRefresh.Load(); ns != 0 {
		t := time.Unix(0, ns)
		st.KeyRefreshed = &t
	}
	if s.opts.SpooledReports != nil {
		st.ReportsSpooled = s.opts.SpooledReports()
	}
	if s.opts.Volumes != nil {
		st.Volumes = append(st.Volumes, s.opts.Volumes()...)
	}
	s.mu.Lock()
	st.KeysFrom = s.keysFrom
	if !s.keysUpdated.IsZero() {
		t := s.keysUpdated
		st.KeysUpdated = &t
	}
	st.BackupsSucceeded, st.BackupsFailed = s.results["success"], s.results["failure"]
	for k, v := range s.dropped {
		st.ConnectionsDropped[k] = v
	}
	for se := range s.sessions {
		st.Sessions = append(st.Sessions, se.status())
	}
	for k, b := range s.backups {
		bs := BackupStatus{Machine: k.machine, Unit: b.unit, Source: k.source, Phase: b.phase, Since: b.since,
			Elapsed: now.Sub(b.since), PhaseSince: b.phaseSince}
		if b.phase == PhaseRunning {
			bs.ReceivedBytes = s.machineReceived(k.machine) - b.startBytes
		}
		if b.files != nil {
			n := b.files()
			bs.Files = &n
		}
		st.Backups = append(st.Backups, bs)
	}
	for k, v := range s.sources {
		if v.failures == 0 {
			continue
		}
		if _, ok := s.assigned[k.machine]; s.assigned != nil && !ok {
			continue // no longer assigned here
		}
		st.Failing = append(st.Failing, FailingSource{Machine: k.machine, Unit: v.unit, Source: k.source, Failures: v.failures,
			FailingSince: v.failingSince, LastAttempt: v.lastAttempt, LastSuccess: v.lastSuccess, LastError: v.lastError})
	}
	s.mu.Unlock()
	slices.SortFunc(st.Failing, func(a, b FailingSource) int {
		return cmp.Or(a.FailingSince.Compare(b.FailingSince), cmp.Compare(a.Machine, b.Machine), cmp.Compare(a.Source, b.Source))
	})
	slices.SortFunc(st.Sessions, func(a, b SessionStatus) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Machine, b.Machine))
	})
	slices.SortFunc(st.Backups, func(a, b BackupStatus) int {
		return cmp.Or(cmp.Compare(a.Machine, b.Machine), cmp.Compare(a.Source, b.Source))
	})
	return st
}

// status copies a session; it reads only atomics and immutable fields.
func (se *session) status() SessionStatus {
	return SessionStatus{
		Mode: se.mode, Machine: se.machine, Unit: se.unit, Remote: se.remote,
		Port: se.port, RestorePort: se.restorePort, Since: se.since, ReceivedBytes: se.received.Load(),
	}
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
