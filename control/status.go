package control

import (
	"cmp"
	"slices"
	"time"

	"github.com/turku-backup/turku-storage/monitor"
)

// Session modes, as the agent's request names them (docs/protocol.md).
const (
	ModeCheckin = monitor.ModeCheckin
	ModeRestore = monitor.ModeRestore
)

// Backup states.
const (
	StateRunning = monitor.PhaseRunning
	StateWaiting = monitor.PhaseWaiting // for a max_concurrent_backups slot
)

// Status is the document `turku-storage status --json` prints: the live
// state (a monitor.Status) arranged for the operator.
type Status struct {
	// Storage is the name of the storage unit that answered.
	Storage string    `json:"storage"`
	Version string    `json:"version"`
	Now     time.Time `json:"now"`
	Started time.Time `json:"started"`
	// Agents are the connected agents with a running session.
	Agents []Agent `json:"agents"`
	// Backups are the sources whose rsync runs now.
	Backups []Backup `json:"backups"`
	// Waiting are the sources waiting for a max_concurrent_backups slot.
	Waiting []Backup `json:"waiting"`
	// MaxConcurrentBackups is the configured number of slots.
	MaxConcurrentBackups int `json:"max_concurrent_backups"`
	// Published is the configuration's published in force, as the key
	// refresh sends it to turku-api; absent when the key is not set
	// (turku-api then takes the unit as published). false: the unit is
	// draining, turku-api places no new machine on it.
	Published *bool `json:"published,omitempty"`
	// Restores are the agents in restore mode, with their ports.
	Restores []Agent `json:"restores"`
	Keys     Keys    `json:"keys"`
	// SpooledReports counts the reports waiting in VAR_DIR/reports for
	// the API.
	SpooledReports int `json:"spooled_reports"`
	// Failing are the sources whose last attempt failed, longest failing
	// first.
	Failing []monitor.FailingSource `json:"failing"`
	Volumes []Volume                `json:"volumes"`
	// Orphans are the machines with data here that the coordinator no
	// longer assigns here, longest orphaned first.
	Orphans []monitor.OrphanStatus `json:"orphans"`
}

// Agent is a connected agent in a Status.
type Agent struct {
	Machine   string    `json:"machine"`
	Unit      string    `json:"unit,omitempty"`
	Remote    string    `json:"remote"`
	Mode      string    `json:"mode"`
	Since     time.Time `json:"since"`
	AgentPort int       `json:"agent_port"`
	// RestorePort is set for restore sessions: the local port the
	// operator's rsync connects to.
	RestorePort int `json:"restore_port,omitempty"`
}

// Backup is a running or waiting source backup in a Status.
type Backup struct {
	Machine string `json:"machine"`
	Unit    string `json:"unit,omitempty"`
	Source  string `json:"source"`
	State   string `json:"state"`
	// Since is when rsync started (running) or when the wait began.
	Since          time.Time `json:"since"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
	// Bytes received from the agent through the tunnel so far, and their
	// mean rate since rsync started; running backups only.
	Bytes          int64   `json:"bytes"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	// Files is how many files rsync transferred so far (new or changed,
	// directories not counted; unchanged files are not among them), when it
	// tells.
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

// Volume is one configured volume and its filesystem's space.
type Volume struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	AcceptNew bool   `json:"accept_new"`
	// HighWaterPct is accept_new_high_water_pct for this volume.
	HighWaterPct int `json:"accept_new_high_water_pct"`
	// MaxUsagePct is the disk guard's max_usage_pct for this volume.
	MaxUsagePct int   `json:"max_usage_pct"`
	SizeBytes   int64 `json:"size_bytes"`
	// FreeBytes is what an unprivileged user may still write (statfs
	// f_bavail), the figure placement uses.
	FreeBytes int64 `json:"free_bytes"`
	// UsedPct is as df shows it: used / (used + available).
	UsedPct float64 `json:"used_pct"`
	// MaxInodeUsagePct is the disk guard's max_inode_usage_pct for this
	// volume; Inodes and InodesFree are the filesystem's (0 where it does
	// not count them), InodeUsedPct as df -i shows it.
	MaxInodeUsagePct int     `json:"max_inode_usage_pct"`
	Inodes           int64   `json:"inodes"`
	InodesFree       int64   `json:"inodes_free"`
	InodeUsedPct     float64 `json:"inode_used_pct"`
	// State is what the volume check found: "ok", "missing", "not
	// mounted", "read-only", …; Message names the volume and the problem.
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
	// Error is set when the volume could not be examined.
	Error string `json:"error,omitempty"`
}

func agentOf(s monitor.SessionStatus) Agent {
	return Agent{Machine: s.Machine, Unit: s.Unit, Remote: s.Remote, Mode: s.Mode, Since: s.Since,
		AgentPort: s.Port, RestorePort: s.RestorePort}
}

// fill sets the live parts of st from ms, ordered for display: oldest
// first.
func (st *Status) fill(ms monitor.Status) {
	st.Now = ms.Time
	st.Agents, st.Restores = []Agent{}, []Agent{}
	for _, s := range ms.Sessions {
		a := agentOf(s)
		st.Agents = append(st.Agents, a)
		if s.Mode == ModeRestore {
			st.Restores = append(st.Restores, a)
		}
	}
	st.Backups, st.Waiting = []Backup{}, []Backup{}
	for _, b := range ms.Backups {
		e := Backup{Machine: b.Machine, Unit: b.Unit, Source: b.Source, State: b.Phase, Since: b.PhaseSince,
			ElapsedSeconds: ms.Time.Sub(b.PhaseSince).Seconds()}
		if b.Phase != StateRunning {
			st.Waiting = append(st.Waiting, e)
			continue
		}
		e.Bytes, e.Files = b.ReceivedBytes, b.Files
		if e.ElapsedSeconds > 0 {
			e.BytesPerSecond = float64(e.Bytes) / e.ElapsedSeconds
		}
		st.Backups = append(st.Backups, e)
	}
	for _, list := range [][]Backup{st.Backups, st.Waiting} {
		slices.SortFunc(list, func(a, b Backup) int {
			return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Machine, b.Machine), cmp.Compare(a.Source, b.Source))
		})
	}
	st.Keys = Keys{Machines: ms.Machines, From: ms.KeysFrom}
	if ms.KeysUpdated != nil {
		st.Keys.Updated = *ms.KeysUpdated
	}
	st.SpooledReports = ms.ReportsSpooled
	st.Failing = ms.Failing
	st.Orphans = ms.Orphans
	st.Volumes = []Volume{}
	for _, v := range ms.Volumes {
		st.Volumes = append(st.Volumes, Volume{Name: v.Name, Path: v.Path, AcceptNew: v.AcceptNew, HighWaterPct: v.HighWaterPct,
			MaxUsagePct: v.MaxUsagePct, SizeBytes: v.SizeBytes, FreeBytes: v.FreeBytes, UsedPct: v.UsedPct,
			MaxInodeUsagePct: v.MaxInodeUsagePct, Inodes: v.Inodes, InodesFree: v.InodesFree, InodeUsedPct: v.InodeUsedPct,
			State: v.State, Message: v.Message, Error: v.Err})
	}
}
