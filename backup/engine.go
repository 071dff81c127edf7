package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/agentproto"
	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/sessionlog"
)

// Snapshot modes (docs/protocol.md §5.3 step 2).
const (
	ModeLinkDest = "link-dest"
	ModeNone     = "none"
)

// Volume is a directory that holds machine directories (config key
// "volumes").
type Volume struct {
	Name string
	Path string
	// AcceptNew is whether new machines may be placed here (config
	// default true: the caller must set it).
	AcceptNew bool
	// HighWaterPct is the fill level (percent used) above which no new
	// machine is placed here, taken as it is: 0 admits new machines only
	// to an empty filesystem. The configuration always sets it
	// (accept_new_high_water_pct, 80 unless configured).
	HighWaterPct int
	// MaxUsagePct is the disk guard: above this fill level no backup
	// starts on the volume; 0 means Options.DefaultMaxUsagePct.
	MaxUsagePct int
	// MaxInodeUsagePct is the disk guard for inodes: above this share
	// of inodes used no backup starts on the volume, and no new machine
	// is placed there; 0 means Options.DefaultMaxInodeUsagePct.
	MaxInodeUsagePct int
}

// API is the part of the coordinator API a backup uses;
// *apiclient.Client implements it.
type API interface {
	PingCheckin(ctx context.Context, uuid string) (*apiclient.CheckinResponse, error)
	SourceUpdate(ctx context.Context, uuid, source string, r apiclient.SourceReport) error
}

// Options configures an Engine. cmd builds it from the configuration.
type Options struct {
	// StorageName is this storage unit's name. The engine itself does not
	// need it (the session logger carries it); it is here for symmetry
	// with the configuration.
	StorageName string
	// VarDir holds machines/ (links to machine directories) and reports/.
	VarDir string
	// LockDir holds the per-machine locks, created 0700 if missing; ""
	// is VarDir/lock (DefaultLockDirName).
	LockDir string
	Volumes []Volume
	// DefaultMaxUsagePct applies to volumes without their own; 0 means
	// DefaultMaxUsagePct (95).
	DefaultMaxUsagePct int
	// DefaultMaxInodeUsagePct applies to volumes without their own; 0
	// means DefaultMaxInodeUsagePct (95).
	DefaultMaxInodeUsagePct int
	// SnapshotMode is ModeLinkDest (the default) or ModeNone.
	SnapshotMode string
	// PreserveHardLinks adds --hard-links to every pull.
	PreserveHardLinks bool
	// Location is the zone of snapshot names, .json times and retention
	// calendars; nil means UTC.
	Location *time.Location
	// RsyncCommand is the rsync binary; "" means "rsync" on PATH.
	RsyncCommand string
	// MaxConcurrent bounds the rsyncs running at once across machines;
	// 0 means no limit. Ignored when Slots is set.
	MaxConcurrent int
	// Slots, when set, is the bound shared with other engines of the same
	// daemon (see Slots); nil makes one of MaxConcurrent.
	Slots *Slots
	// Reports, when set, is the report queue shared with other engines of
	// the same daemon (see Reports); nil makes one on VarDir.
	Reports *Reports
	API     API
	// History, when set, records every source's attempt
	// (VAR_DIR/history); nil records none.
	History *history.Store
	// Observer is told of each source's phases and result; nil tells
	// no one.
	Observer Observer
	// Logger receives the storage-side log; nil discards it.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registered reports whether a machine is still registered to this
	// storage unit (the key cache); a name link pointing at a registered
	// machine is never taken by another. Nil counts every machine as
	// registered.
	Registered func(uuid string) bool
}

// Engine runs backups. It is safe for concurrent use by many sessions.
type Engine struct {
	varDir    string
	lockDir   string
	volumes   []Volume
	mode      string
	hardLinks bool
	loc       *time.Location
	rsync     string
	api       API
	log       *slog.Logger
	now       func() time.Time
	slots     *Slots
	reports   *Reports
	obs       Observer
	history   *history.Store
	maxUsage  int // the disk guard's threshold for directories outside every volume
	// maxInodeUsage is the inode threshold for directories outside every
	// volume.
	maxInodeUsage int

	// Seams for tests, set by New.
	pick    func(weights []int64) int
	stat    func(path string) (volumeStat, error) // statfs(2) of a volume
	randHex func() string

	registered func(uuid string) bool
	names      nameConflicts
}

// New checks opts and returns an Engine. It creates nothing on disk.
func New(opts Options) (*Engine, error) {
	e := &Engine{
		lockDir:       opts.LockDir,
		mode:          opts.SnapshotMode,
		hardLinks:     opts.PreserveHardLinks,
		loc:           opts.Location,
		rsync:         opts.RsyncCommand,
		api:           opts.API,
		log:           opts.Logger,
		now:           opts.Now,
		obs:           opts.Observer,
		history:       opts.History,
		maxUsage:      Volume{}.maxUsage(opts.DefaultMaxUsagePct),
		maxInodeUsage: Volume{}.maxInodeUsage(opts.DefaultMaxInodeUsagePct),
		stat:          statVolume,
		pick:          pickWeighted,
		randHex:       randomHex4,
		registered:    opts.Registered,
	}
	if opts.VarDir == "" {
		return nil, errors.New("backup: var dir is not set")
	}
	var err error
	if e.varDir, err = filepath.Abs(opts.VarDir); err != nil {
		return nil, fmt.Errorf("backup: var dir: %w", err)
	}
	if len(opts.Volumes) == 0 {
		return nil, errors.New("backup: no volumes configured")
	}
	for _, v := range opts.Volumes {
		if v.Path == "" {
			return nil, fmt.Errorf("backup: volume %q has no path", v.Name)
		}
		if v.Path, err = filepath.Abs(v.Path); err != nil {
			return nil, fmt.Errorf("backup: volume %q: %w", v.Name, err)
		}
		if v.Name == "" {
			v.Name = v.Path
		}
		v.MaxUsagePct = v.maxUsage(opts.DefaultMaxUsagePct)
		v.MaxInodeUsagePct = v.maxInodeUsage(opts.DefaultMaxInodeUsagePct)
		e.volumes = append(e.volumes, v)
	}
	switch e.mode {
	case "":
		e.mode = ModeLinkDest
	case ModeLinkDest, ModeNone:
	default:
		return nil, fmt.Errorf("backup: unknown snapshot mode %q: want %q or %q", e.mode, ModeLinkDest, ModeNone)
	}
	if e.api == nil {
		return nil, errors.New("backup: API is not set")
	}
	if e.lockDir == "" {
		e.lockDir = filepath.Join(e.varDir, DefaultLockDirName)
	}
	if e.loc == nil {
		e.loc = time.UTC
	}
	if e.rsync == "" {
		e.rsync = "rsync"
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.obs == nil {
		e.obs = nopObserver{}
	}
	e.slots = opts.Slots
	if e.slots == nil {
		e.slots = NewSlots(opts.MaxConcurrent)
	}
	e.reports = opts.Reports
	if e.reports == nil {
		e.reports = NewReports(ReportsOptions{VarDir: e.varDir, API: e.api, Logger: e.log, Now: e.now})
	}
	return e, nil
}

func randomHex4() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Request is one agent session's checkin; the SSH server's
// sshserver.PullRequest is the same type.
type Request = agentproto.Checkin

// Pull does for one checkin what the old turku-storage-ping did: take the
// machine's lock, call storage_ping_checkin, then back up every scheduled
// source in name order and report each one. The agent sees "Sources to
// back up: a, b" (or "No sources to back up now"), "Begin: UNIT SOURCE"
// … "End: UNIT SOURCE" per source and "Done". Pull writes its own
// agent-facing error lines; the returned error, non-nil if anything
// failed, is for the session's exit status and the storage log.
func (e *Engine) Pull(ctx context.Context, req Request) error {
	alog := req.Log
	if alog == nil {
		alog = sessionlog.Discard()
	}
	if err := checkComponent("machine UUID", req.Machine); err != nil {
		alog.Errorf("Invalid machine UUID")
		return fmt.Errorf("pull: %w", err)
	}
	if _, _, err := net.SplitHostPort(req.RsyncAddr); err != nil {
		alog.Errorf("Internal error: no rsync endpoint")
		return fmt.Errorf("pull %s: rsync address: %w", req.Machine, err)
	}
	lock, err := lockMachine(e.lockDir, req.Machine)
	if err != nil {
		if errors.Is(err, ErrBusy) {
			alog.Errorf("Another backup of this machine is already running")
		} else {
			alog.Errorf("Internal error: cannot lock the machine")
		}
		return fmt.Errorf("pull %s: %w", req.Machine, err)
	}
	defer lock.Unlock()

	resp, err := e.api.PingCheckin(ctx, req.Machine)
	if err != nil {
		alog.Errorf("Checkin with the API failed")
		return fmt.Errorf("pull %s: %w", req.Machine, err)
	}
	m := resp.Machine
	if m.UUID != "" && m.UUID != req.Machine {
		alog.Errorf("Checkin with the API failed")
		return fmt.Errorf("pull %s: checkin answered for machine %q", req.Machine, m.UUID)
	}
	names := make([]string, 0, len(m.ScheduledSources))
	for name := range m.ScheduledSources {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) > 0 {
		alog.Infof("Sources to back up: %s", strings.Join(names, ", "))
	} else {
		alog.Infof("No sources to back up now")
	}

	run := &machineRun{e: e, req: req, m: m, alog: alog, log: e.log.With("machine", req.Machine, "unit", m.UnitName)}
	var failed []string
	for i, name := range names {
		if ctx.Err() != nil {
			// The session is gone: the rest stay due at the API.
			failed = append(failed, names[i:]...)
			break
		}
		alog.Infof("Begin: %s %s", m.UnitName, name)
		if !run.source(ctx, name, m.ScheduledSources[name]) {
			failed = append(failed, name)
		}
		alog.Infof("End: %s %s", m.UnitName, name)
	}
	alog.Infof("Done")
	if len(failed) > 0 {
		if err := context.Cause(ctx); err != nil {
			return fmt.Errorf("pull %s: sources not backed up: %s: %w", req.Machine, strings.Join(failed, ", "), err)
		}
		return fmt.Errorf("pull %s: sources not backed up: %s", req.Machine, strings.Join(failed, ", "))
	}
	return nil
}
