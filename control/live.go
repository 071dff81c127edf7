package control

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Session modes, as the agent's request names them (docs/protocol.md).
const (
	ModeCheckin = "checkin"
	ModeRestore = "restore"
)

// Backup states.
const (
	StateRunning = "running"
	StateWaiting = "waiting" // for a max_concurrent_backups slot
)

// SessionInfo describes one agent session while it runs.
type SessionInfo struct {
	Machine string
	Unit    string
	Remote  string
	Mode    string
	// AgentPort is the PORT the agent forwarded (ssh -R PORT:...).
	AgentPort int
	// RestorePort is, for a restore session, the local port the
	// operator's rsync connects to (the agent's PORT unless that was
	// taken).
	RestorePort int
}

// BackupInfo describes one source backup while it waits or runs.
type BackupInfo struct {
	Machine string
	Unit    string
	Source  string
	// Received counts the bytes that came from the agent through the
	// tunnel since rsync started; nil when unknown.
	Received func() int64
	// Files counts the files rsync --verbose listed so far; nil when
	// unknown.
	Files func() int64
}

// Live is the registry of what serve is doing now. It is safe for
// concurrent use; each Start method returns the function that removes the
// entry again, to be called exactly once.
type Live struct {
	now func() time.Time

	mu       sync.Mutex // guards the fields below
	nextID   uint64
	sessions map[uint64]sessionEntry
	backups  map[uint64]backupEntry
	// changed is closed and replaced whenever sessions change, so a
	// waiter (WaitRestore) wakes without polling.
	changed     chan struct{}
	keysUpdated time.Time
	keysCount   int
	keysFrom    string
}

type sessionEntry struct {
	SessionInfo
	since time.Time
}

type backupEntry struct {
	BackupInfo
	state string
	since time.Time
}

// NewLive returns an empty registry; now is the clock (nil: time.Now).
func NewLive(now func() time.Time) *Live {
	if now == nil {
		now = time.Now
	}
	return &Live{
		now:      now,
		sessions: map[uint64]sessionEntry{},
		backups:  map[uint64]backupEntry{},
		changed:  make(chan struct{}),
	}
}

func (l *Live) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// SessionStarted records a running agent session until the returned
// function is called.
func (l *Live) SessionStarted(s SessionInfo) (ended func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextID++
	id := l.nextID
	l.sessions[id] = sessionEntry{SessionInfo: s, since: l.now()}
	l.notify()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			delete(l.sessions, id)
			l.notify()
		})
	}
}

// BackupWaiting records a source waiting for a backup slot until the
// returned function is called.
func (l *Live) BackupWaiting(b BackupInfo) (done func()) { return l.backup(b, StateWaiting) }

// BackupRunning records a source whose rsync runs until the returned
// function is called.
func (l *Live) BackupRunning(b BackupInfo) (done func()) { return l.backup(b, StateRunning) }

func (l *Live) backup(b BackupInfo, state string) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextID++
	id := l.nextID
	l.backups[id] = backupEntry{BackupInfo: b, state: state, since: l.now()}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			delete(l.backups, id)
		})
	}
}

// KeysLoaded records the machine keys in use: how many, when they were
// fetched, and from where ("api" or "cache").
func (l *Live) KeysLoaded(updated time.Time, machines int, from string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keysUpdated, l.keysCount, l.keysFrom = updated, machines, from
}

// Agent is a connected agent in a Status.
type Agent struct {
	Machine   string    `json:"machine"`
	Unit      string    `json:"unit,omitempty"`
	Remote    string    `json:"remote"`
	Mode      string    `json:"mode"`
	Since     time.Time `json:"since"`
	AgentPort int       `json:"agent_port"`
	// RestorePort is set for restore sessions.
	RestorePort int `json:"restore_port,omitempty"`
}

// Backup is a running or waiting source backup in a Status.
type Backup struct {
	Machine        string    `json:"machine"`
	Unit           string    `json:"unit,omitempty"`
	Source         string    `json:"source"`
	State          string    `json:"state"`
	Since          time.Time `json:"since"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
	// Bytes received from the agent through the tunnel so far, and their
	// mean rate since rsync started; running backups only.
	Bytes          int64   `json:"bytes"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	// Files is how many files rsync listed so far, when it tells.
	Files *int64 `json:"files,omitempty"`
}

// Keys is the machine key set in a Status.
type Keys struct {
	Machines int `json:"machines"`
	// Updated is when the key set was fetched from the API; zero before
	// any refresh or cache.
	Updated time.Time `json:"updated"`
	// From is "api" after a refresh, "cache" when loaded at start.
	From string `json:"from,omitempty"`
}

// snapshot fills the live parts of a Status, ordered for display.
func (l *Live) snapshot(st *Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	st.Now = now
	st.Agents = []Agent{}
	st.Restores = []Agent{}
	for _, s := range l.sessions {
		a := Agent{Machine: s.Machine, Unit: s.Unit, Remote: s.Remote, Mode: s.Mode, Since: s.since, AgentPort: s.AgentPort, RestorePort: s.RestorePort}
		st.Agents = append(st.Agents, a)
		if s.Mode == ModeRestore {
			st.Restores = append(st.Restores, a)
		}
	}
	st.Backups = []Backup{}
	st.Waiting = []Backup{}
	for _, b := range l.backups {
		e := Backup{Machine: b.Machine, Unit: b.Unit, Source: b.Source, State: b.state, Since: b.since,
			ElapsedSeconds: now.Sub(b.since).Seconds()}
		if b.state == StateWaiting {
			st.Waiting = append(st.Waiting, e)
			continue
		}
		if b.Received != nil {
			e.Bytes = b.Received()
			if e.ElapsedSeconds > 0 {
				e.BytesPerSecond = float64(e.Bytes) / e.ElapsedSeconds
			}
		}
		if b.Files != nil {
			n := b.Files()
			e.Files = &n
		}
		st.Backups = append(st.Backups, e)
	}
	byAge := func(a, b time.Time, ka, kb string) int {
		if c := a.Compare(b); c != 0 {
			return c
		}
		return strings.Compare(ka, kb)
	}
	slices.SortFunc(st.Agents, func(a, b Agent) int { return byAge(a.Since, b.Since, a.Machine, b.Machine) })
	slices.SortFunc(st.Restores, func(a, b Agent) int { return byAge(a.Since, b.Since, a.Machine, b.Machine) })
	for _, list := range [][]Backup{st.Backups, st.Waiting} {
		slices.SortFunc(list, func(a, b Backup) int {
			return byAge(a.Since, b.Since, a.Machine+"/"+a.Source, b.Machine+"/"+b.Source)
		})
	}
	st.Keys = Keys{Machines: l.keysCount, Updated: l.keysUpdated, From: l.keysFrom}
}

// restoreFor returns the newest restore session of machine, if any, and a
// channel closed at the next change of sessions.
func (l *Live) restoreFor(machine string) (*Agent, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found *sessionEntry
	for _, s := range l.sessions {
		if s.Mode == ModeRestore && s.Machine == machine && (found == nil || s.since.After(found.since)) {
			s := s
			found = &s
		}
	}
	if found == nil {
		return nil, l.changed
	}
	return &Agent{Machine: found.Machine, Unit: found.Unit, Remote: found.Remote, Mode: found.Mode,
		Since: found.since, AgentPort: found.AgentPort, RestorePort: found.RestorePort}, l.changed
}
