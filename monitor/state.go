package monitor

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Session modes: what the SSH server reports, the "mode" label of
// turku_storage_sessions and of `status`.
const (
	ModeCheckin = "checkin"
	ModeRestore = "restore"
)

// Where the machine keys in use came from.
const (
	KeysFromAPI   = "api"
	KeysFromCache = "cache"
)

// Backup phases: what the backup engine reports, the "state" of a backup
// in `status`.
const (
	PhaseWaiting = "waiting" // for a max_concurrent_backups slot
	PhaseRunning = "running" // rsync runs
)

// DurationBuckets are the upper bounds, in seconds, of
// turku_storage_backup_duration_seconds: 10 s to 24 h.
var DurationBuckets = []float64{10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400}

// Volume is one configured volume, what the volume check found and its
// filesystem as statfs(2) sees it: the one volume type of the live state,
// read by the collector and listed by `status`.
type Volume struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// AcceptNew and HighWaterPct are the volume's accept_new and
	// accept_new_high_water_pct: whether placement puts new machines here.
	AcceptNew    bool  `json:"accept_new"`
	HighWaterPct int   `json:"accept_new_high_water_pct"`
	SizeBytes    int64 `json:"size_bytes"`
	FreeBytes    int64 `json:"free_bytes"` // available to unprivileged users (f_bavail)
	// UsedBytes is f_blocks − f_bfree, as df shows it: blocks reserved
	// for root are neither used nor free.
	UsedBytes int64 `json:"used_bytes"`
	// UsedPct is df's Use%: UsedBytes / (UsedBytes + FreeBytes).
	UsedPct     float64 `json:"used_pct"`
	MaxUsagePct int     `json:"max_usage_pct"` // the disk guard's threshold
	// State is what the volume check found: "ok", or what is wrong
	// ("missing", "not mounted", "read-only", …); Message says it in a
	// sentence naming the volume.
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
	// Inodes and InodesFree are the filesystem's (0 where it does not
	// count them); InodeUsedPct is as df -i shows it.
	Inodes           int64   `json:"inodes"`
	InodesFree       int64   `json:"inodes_free"`
	InodeUsedPct     float64 `json:"inode_used_pct"`
	MaxInodeUsagePct int     `json:"max_inode_usage_pct"` // the inode guard's threshold
	// Err is set when the filesystem's usage could not be read.
	Err string `json:"error,omitempty"`
}

// Writable reports whether the volume check found the volume healthy:
// there, mounted and writable.
func (v Volume) Writable() bool { return v.State == "ok" }

// Options are the parts of the state that are read, not reported: cmd
// passes functions that look at the disk when a reader asks.
type Options struct {
	// Volumes returns the volumes' usage; nil means none.
	Volumes func() []Volume
	// SpooledReports returns how many reports wait in VAR_DIR/reports;
	// nil means 0.
	SpooledReports func() int
	// ReportSpool returns the spool's size, limits and drops; nil exports
	// none of them. Where set, a scrape takes the count of spooled reports
	// from it rather than from SpooledReports: one read of the spool.
	ReportSpool func() SpoolUsage
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// State is the live state. All methods are safe for concurrent use; the
// reporting methods (those the backup engine and the SSH server call) of a
// nil *State do nothing, so reporters need no nil checks.
type State struct {
	opts Options

	received     atomic.Int64 // bytes from agents through checkin tunnels
	authFailures atomic.Int64
	machines     atomic.Int64
	keyRefresh   atomic.Int64 // UnixNano of the last successful refresh; 0: never
	// configOK is whether the last load of the configuration (at start
	// or on SIGHUP) succeeded; configLoaded is when one last did
	// (UnixNano; 0: never).
	configOK     atomic.Bool
	configLoaded atomic.Int64

	mu       sync.Mutex // guards the fields below
	results  map[string]int64
	hist     histogram
	dropped  map[string]int64
	sources  map[sourceKey]*sourceState
	sessions map[*session]struct{}
	backups  map[backupKey]*backupState
	// changed is closed and replaced whenever sessions change, so a
	// waiter (RestoreSession) wakes without polling.
	changed chan struct{}
	// keysFrom is where the machine keys in use came from ("api" or
	// "cache"), keysUpdated when they were fetched from the API.
	keysFrom    string
	keysUpdated time.Time
	// assigned are the machines the last key refresh listed; nil until
	// the first.
	assigned map[string]Assignment

	orph orphanState // orphans.go; its own lock
}

type sourceKey struct{ machine, source string }

// sourceState is one source's last success and attempt (zero: unknown),
// and its failures in a row.
type sourceState struct {
	unit        string
	lastSuccess time.Time
	lastAttempt time.Time
	// firstSeen is the earliest this unit knows of the source: its first
	// attempt, or its newest snapshot at start.
	firstSeen time.Time
	// failures counts the attempts that failed since the last success,
	// the first of them beginning at failingSince; lastError is the
	// newest one's error.
	failures     int
	failingSince time.Time
	lastError    string
}

// seen moves firstSeen back to t if t is earlier.
func (st *sourceState) seen(t time.Time) {
	if !t.IsZero() && (st.firstSeen.IsZero() || t.Before(st.firstSeen)) {
		st.firstSeen = t
	}
}

// SourceHistory is what the attempt history (VAR_DIR/history) says of a
// source at start: SeedHistory takes it.
type SourceHistory struct {
	LastSuccess, LastAttempt time.Time
	// Failures in a row up to LastAttempt, the first beginning at
	// FailingSince; LastError is the newest one's error.
	Failures     int
	FailingSince time.Time
	LastError    string
}

// Assignment is a machine assigned to this unit, first seen at Since.
type Assignment struct {
	Unit  string
	Since time.Time
}

// SpoolUsage is the report spool's size against its cap.
type SpoolUsage struct {
	Reports    int
	Bytes      int64
	MaxReports int
	MaxBytes   int64
	Dropped    int64
}

type backupKey struct{ machine, source string }

type backupState struct {
	unit  string
	phase string
	// phaseSince is when it entered phase; startBytes the session's
	// received count then.
	phaseSince time.Time
	startBytes int64
	// files counts the files rsync transferred; nil while waiting.
	files func() int64
}

type session struct {
	mode, machine, unit, remote string
	port, restorePort           int
	since                       time.Time
	received                    atomic.Int64
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(DurationBuckets)+1)
	}
	i, _ := slices.BinarySearch(DurationBuckets, v)
	h.counts[i]++
	h.sum += v
	h.count++
}

// New returns an empty State.
func New(opts Options) *State {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &State{
		opts:     opts,
		results:  map[string]int64{"success": 0, "failure": 0},
		dropped:  map[string]int64{},
		sources:  map[sourceKey]*sourceState{},
		sessions: map[*session]struct{}{},
		backups:  map[backupKey]*backupState{},
		changed:  make(chan struct{}),
	}
}

// SeedSource records what the disk says of a source at start: its newest
// snapshot finished at lastSuccess. A later report wins; an older seed
// never replaces a newer value.
func (s *State) SeedSource(machine, unit, source string, lastSuccess time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.seed(machine, unit, source)
	if lastSuccess.After(st.lastSuccess) {
		st.lastSuccess = lastSuccess
	}
	if lastSuccess.After(st.lastAttempt) {
		st.lastAttempt = lastSuccess
	}
	st.seen(lastSuccess)
}

// SeedHistory records what the attempt history says of a source at
// start. A report that came in since wins.
func (s *State) SeedHistory(machine, unit, source string, h SourceHistory) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.seed(machine, unit, source)
	if h.LastSuccess.After(st.lastSuccess) {
		st.lastSuccess = h.LastSuccess
	}
	if h.LastAttempt.After(st.lastAttempt) {
		st.lastAttempt = h.LastAttempt
		st.failures, st.failingSince, st.lastError = h.Failures, h.FailingSince, h.LastError
	}
	st.seen(h.FailingSince)
	st.seen(h.LastSuccess)
}

// SetAssigned replaces the machines assigned to this unit, as the key
// refresh (or the key cache at start) lists them. Once it was called,
// only their sources are exported.
func (s *State) SetAssigned(machines map[string]Assignment) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assigned = machines
	if s.assigned == nil {
		s.assigned = map[string]Assignment{}
	}
}

// SourceRemoved forgets a source the API no longer has (it answered a
// report with "Source not found") on a machine still assigned here: its
// series are no longer exported, so it does not turn into a late or
// failing source forever. Seeds from disk at the next start bring it back
// until the API says so again.
func (s *State) SourceRemoved(machine, source string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sources, sourceKey{machine, source})
}

// seed returns the entry for machine/source as a seed finds it: unit
// named where no report named it yet. s.mu is held.
func (s *State) seed(machine, unit, source string) *sourceState {
	st := s.source(machine, source)
	if st.unit == "" {
		st.unit = unit
	}
	return st
}

// source returns the entry for machine/source, creating it. s.mu is held.
func (s *State) source(machine, source string) *sourceState {
	k := sourceKey{machine, source}
	st := s.sources[k]
	if st == nil {
		st = &sourceState{}
		s.sources[k] = st
	}
	return st
}

// BackupPhase records that a source's backup entered phase (PhaseWaiting
// or PhaseRunning); files, when not nil, counts the files rsync transferred so
// far. It implements backup.Observer.
func (s *State) BackupPhase(machine, unit, source, phase string, files func() int64) {
	if s == nil {
		return
	}
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := backupKey{machine, source}
	b := s.backups[k]
	if b == nil {
		b = &backupState{unit: unit}
		s.backups[k] = b
	}
	b.phase, b.phaseSince, b.files = phase, now, files
	b.startBytes = s.machineReceived(machine)
}

// machineReceived is the bytes the machine's checkin session carried so
// far; s.mu is held.
func (s *State) machineReceived(machine string) int64 {
	for se := range s.sessions {
		if se.machine == machine && se.mode == ModeCheckin {
			return se.received.Load()
		}
	}
	return 0
}

// BackupFinished records a source's result: the backup ran from begin to
// end. It implements backup.Observer.
func (s *State) BackupFinished(machine, unit, source string, ok bool, begin, end time.Time, summary string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.backups, backupKey{machine, source})
	st := s.source(machine, source)
	if unit != "" {
		st.unit = unit
	}
	if end.After(st.lastAttempt) {
		st.lastAttempt = end
	}
	st.seen(begin)
	if ok {
		s.results["success"]++
		if end.After(st.lastSuccess) {
			st.lastSuccess = end
		}
		st.failures, st.failingSince, st.lastError = 0, time.Time{}, ""
	} else {
		s.results["failure"]++
		if st.failures == 0 {
			st.failingSince = begin
		}
		st.failures++
		st.lastError = firstLine(summary)
	}
	s.hist.observe(end.Sub(begin).Seconds())
}

// AuthFailed counts a failed authentication attempt. It implements
// sshserver.Observer.
func (s *State) AuthFailed() {
	if s == nil {
		return
	}
	s.authFailures.Add(1)
}

// ConnectionDropped counts a connection the SSH server dropped for
// reason. It implements sshserver.Observer.
func (s *State) ConnectionDropped(reason string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped[reason]++
}

// SessionStarted records an agent session: port is the agent's forwarded
// PORT, restorePort the local port of a restore session (0 for a
// checkin). received counts the bytes its tunnel carries from the agent;
// end removes the session. It implements sshserver.Observer.
func (s *State) SessionStarted(mode, machine, unit, remote string, port, restorePort int) (received func(n int64), end func()) {
	if s == nil {
		return func(int64) {}, func() {}
	}
	se := &session{mode: mode, machine: machine, unit: unit, remote: remote, port: port, restorePort: restorePort, since: s.opts.Now()}
	s.mu.Lock()
	s.sessions[se] = struct{}{}
	s.sessionsChanged()
	s.mu.Unlock()
	received = func(n int64) {
		se.received.Add(n)
		s.received.Add(n)
	}
	var once sync.Once
	end = func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.sessions, se)
			s.sessionsChanged()
			s.mu.Unlock()
		})
	}
	return received, end
}

// SetMachines records how many machines' keys are loaded.
func (s *State) SetMachines(n int) {
	if s == nil {
		return
	}
	s.machines.Store(int64(n))
}

// sessionsChanged wakes the RestoreSession waiters; s.mu is held.
func (s *State) sessionsChanged() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// RestoreSession returns the newest restore session of machine, or nil,
// and a channel closed at the next change of sessions: a caller waiting
// for one to start checks again when it is closed.
func (s *State) RestoreSession(machine string) (*Session, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *session
	for se := range s.sessions {
		if se.mode == ModeRestore && se.machine == machine && (found == nil || se.since.After(found.since)) {
			found = se
		}
	}
	if found == nil {
		return nil, s.changed
	}
	st := found.status()
	return &st, s.changed
}

// KeyRefreshed records a successful key refresh from the API at t.
func (s *State) KeyRefreshed(t time.Time) {
	if s == nil {
		return
	}
	s.keyRefresh.Store(t.UnixNano())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keysFrom, s.keysUpdated = KeysFromAPI, t
}

// KeysFromCache records that the machine keys in use were loaded from the
// cache, which the API sent at updated.
func (s *State) KeysFromCache(updated time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keysFrom, s.keysUpdated = KeysFromCache, updated
}

// firstLine is a summary's first line: the error of a failure.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// ConfigLoaded records a load of the configuration at t, at start or on
// SIGHUP: ok, or refused (serve keeps running the previous one).
func (s *State) ConfigLoaded(ok bool, t time.Time) {
	if s == nil {
		return
	}
	if ok {
		s.configLoaded.Store(t.UnixNano())
	}
	s.configOK.Store(ok)
}
