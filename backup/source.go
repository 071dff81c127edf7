package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/monitor"
	"github.com/turku-backup/turku-storage/rsync"
	"github.com/turku-backup/turku-storage/sessionlog"
)

// inputError is a problem with what the API or the agent sent. Its text is
// about their own data, so the agent may see it.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

func badInput(format string, args ...any) error {
	return &inputError{fmt.Errorf(format, args...)}
}

// machineRun is one Pull's state for its machine. It is used by one
// goroutine.
type machineRun struct {
	e    *Engine
	req  Request
	m    apiclient.CheckinMachine
	alog *sessionlog.Logger
	log  *slog.Logger

	placed bool // machineDir has run; dir and dirErr are its result
	dir    string
	dirErr error
}

// machineDir checks the machine's names, places it and links its name,
// once per run and only when a source is about to be pulled, so a checkin
// with nothing valid to do changes nothing on disk.
func (r *machineRun) machineDir() (string, error) {
	if r.placed {
		return r.dir, r.dirErr
	}
	r.placed = true
	name, err := machineLinkName(r.m.EnvironmentName, r.m.ServiceName, r.m.UnitName)
	if err != nil {
		r.dirErr = &inputError{err}
		return "", r.dirErr
	}
	r.dir, r.dirErr = r.e.placeMachine(r.req.Machine)
	if r.dirErr == nil {
		if err := r.e.linkMachineName(r.req.Machine, name); err != nil {
			r.log.Warn("machine name link failed", "err", err)
		}
	}
	return r.dir, r.dirErr
}

// source backs up and reports one source, and reports whether the backup
// worked.
func (r *machineRun) source(ctx context.Context, name string, src apiclient.Source) bool {
	begin := r.e.now()
	log := r.log.With("source", name)
	snap, summary, stats, err := r.safeBackup(ctx, log, name, src)
	end := r.e.now()
	r.e.obs.BackupFinished(r.req.Machine, r.m.UnitName, name, err == nil, begin, end, summary)
	r.record(log, name, snap, summary, stats, err == nil, begin, end)
	if err != nil {
		log.Error("backup failed", "err", err, "duration", end.Sub(begin))
		r.alog.Errorf("%s", agentMessage(name, err))
	} else {
		log.Info("backup done", "snapshot", snap, "duration", end.Sub(begin),
			"bytes", stats.BytesReceived, "files", stats.Files, "new_files", stats.NewFiles,
			"total_size", stats.TotalSize, "transferred_size", stats.TransferredSize)
	}
	rep := apiclient.SourceReport{
		Success:   err == nil,
		Snapshot:  snap,
		Summary:   summary,
		TimeBegin: epoch(begin),
		TimeEnd:   epoch(end),
	}
	// The snapshot is safe: the report is spooled and delivered in the
	// background, so the agent's session does not wait for the API.
	r.e.reports.Send(r.req.Machine, name, rep)
	return err == nil
}

// record appends the attempt to the machine's history, so it outlives a
// restart; a history that cannot be written is logged, never a reason to
// fail the backup.
func (r *machineRun) record(log *slog.Logger, source, snap, summary string, st rsync.TransferStats, ok bool, begin, end time.Time) {
	if r.e.history == nil {
		return
	}
	_, err := r.e.history.Append(r.req.Machine, history.Attempt{
		Source: source, Unit: r.m.UnitName, Begin: begin, End: end, Success: ok,
		Snapshot: snap, Summary: summary,
		BytesReceived: st.BytesReceived, TotalSize: st.TotalSize, TransferredSize: st.TransferredSize,
		Files: st.Files, NewFiles: st.NewFiles,
	})
	if err != nil {
		log.Error("backup history not written", "err", err)
	}
}

// statsSummary is the report summary's line with the transfer's
// figures, or "" when rsync printed none (it always counts at least the
// source's top directory).
func statsSummary(s rsync.TransferStats) string {
	if s.Files == 0 {
		return ""
	}
	return fmt.Sprintf("Transfer: %d files (%d new, %d sent), %d bytes (%d sent), %d bytes received\n",
		s.Files, s.NewFiles, s.FilesTransferred, s.TotalSize, s.TransferredSize, s.BytesReceived)
}

func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// errInterrupted marks work stopped because its context ended; the
// context's cause follows it in the message.
var errInterrupted = errors.New("interrupted")

// agentMessage is what the agent is told about a failed source: its own
// input errors in full, otherwise no storage-side detail.
func agentMessage(source string, err error) string {
	var ie *inputError
	var re *rsync.Error
	var vf *VolumeFullError
	var ve *VolumeError
	switch {
	case errors.As(err, &ie):
		return fmt.Sprintf("Source %s: %v", source, ie)
	case errors.As(err, &vf):
		return fmt.Sprintf("Source %s: storage %v", source, vf)
	case errors.Is(err, errInterrupted):
		return fmt.Sprintf("Source %s: backup interrupted", source)
	case errors.As(err, &ve):
		// The volume and its state, and rsync's exit if that is what
		// failed; the details (paths, system errors) stay in our log.
		msg := (&VolumeError{Volume: ve.Volume, State: ve.State}).Error()
		if errors.As(err, &re) {
			msg += ": " + re.Error()
		}
		return fmt.Sprintf("Source %s: storage %s", source, msg)
	case errors.As(err, &re):
		return fmt.Sprintf("Source %s: %v", source, re)
	}
	return fmt.Sprintf("Source %s: storage error, see the storage unit's log", source)
}

// failureSummary is the report summary of a failed source: the error and,
// for rsync, its last lines of output and what they mean on the agent.
func failureSummary(err error) string {
	s := err.Error() + "\n"
	var re *rsync.Error
	if errors.As(err, &re) && len(re.Tail) > 0 {
		s += strings.Join(re.Tail, "\n") + "\n"
		if h := rsyncHint(re.Tail); h != "" {
			s += "meaning: " + h + "\n"
		}
	}
	return s
}

// snapshotMode resolves docs/protocol.md §5.3 step 2.
func (e *Engine) snapshotMode(src apiclient.Source) (string, error) {
	mode := e.mode
	if mode == ModeLinkDest && (src.LargeRotatingFiles || src.LargeModifyingFiles) {
		mode = ModeNone
	}
	if src.SnapshotMode != "" {
		mode = src.SnapshotMode
	}
	if mode != ModeLinkDest && mode != ModeNone {
		return "", badInput("unknown snapshot mode %q", mode)
	}
	return mode, nil
}

// credentials picks the rsync login: the agent's for this source if it
// sent an entry, else the (very old) API's (docs/protocol.md §5.3 step 1).
func (r *machineRun) credentials(name string, src apiclient.Source) (user, pass string, err error) {
	if c, ok := r.req.Credentials[name]; ok {
		user, pass = c.Username, c.Password
	} else {
		user, pass = src.Username, src.Password
	}
	if user == "" || pass == "" {
		return "", "", badInput("Cannot find authentication for source %q", name)
	}
	if err := checkUsername(user); err != nil {
		return "", "", &inputError{err}
	}
	if strings.ContainsRune(pass, 0) {
		return "", "", badInput("password contains NUL")
	}
	return user, pass, nil
}

// backup pulls one source and, in link-dest mode, makes the snapshot and
// applies retention. Everything the agent or API sent is checked before
// anything on disk changes. It returns the snapshot name and the report
// summary.
func (r *machineRun) backup(ctx context.Context, log *slog.Logger, name string, src apiclient.Source) (string, string, rsync.TransferStats, error) {
	var stats rsync.TransferStats
	fail := func(err error) (string, string, rsync.TransferStats, error) {
		return "", failureSummary(err), stats, err
	}
	if err := checkSourceName(name); err != nil {
		return fail(&inputError{err})
	}
	user, pass, err := r.credentials(name, src)
	if err != nil {
		return fail(err)
	}
	mode, err := r.e.snapshotMode(src)
	if err != nil {
		return fail(err)
	}
	rules, err := filterRules(src.Filter, src.Exclude)
	if err != nil {
		return fail(&inputError{err})
	}
	bwlimit := strings.TrimSpace(string(src.Bwlimit))
	if err := checkBwlimit(bwlimit); err != nil {
		return fail(&inputError{err})
	}
	var ret *Retention
	var retErr error
	if mode == ModeLinkDest && strings.TrimSpace(src.Retention) != "" {
		ret, retErr = ParseRetention(src.Retention)
	}

	// The disk guard, before anything on the volume is written or
	// deleted (retention included).
	if err := r.e.guard(r.req.Machine); err != nil {
		return fail(err)
	}
	mdir, err := r.machineDir()
	if err != nil {
		return fail(err)
	}
	// From here on a failure may come from the volume (it went read-only,
	// ran out of inodes): if the volume now fails its check, say so.
	fail = func(err error) (string, string, rsync.TransferStats, error) {
		err = r.e.volumeTrouble(mdir, err)
		return "", failureSummary(err), stats, err
	}
	spec := rsync.Pull{
		Command: r.e.rsync, Addr: r.req.RsyncAddr, User: user, Password: pass, Module: name,
		Dest: filepath.Join(mdir, name), Inplace: mode == ModeNone,
		HardLinks: r.e.hardLinks || src.PreserveHardLinks, BWLimit: bwlimit,
	}
	var snapDir string
	var base *Snapshot
	if mode == ModeLinkDest {
		snapDir = snapshotsDir(mdir, name)
		if err := os.MkdirAll(snapDir, 0o755); err != nil {
			return fail(fmt.Errorf("create snapshot directory: %w", err))
		}
		done, err := finishDeletes(snapDir)
		if err != nil {
			log.Error("leftover snapshot removal failed", "err", err)
		} else if len(done) > 0 {
			log.Info("leftover snapshot removal finished", "snapshot", done)
		}
		if err != nil || len(done) > 0 {
			// What the interrupted removal freed before is unknown.
			r.dropUsage(log, snapDir)
		}
		snaps, err := ListSnapshots(mdir, name, r.e.loc)
		if err != nil {
			return fail(err)
		}
		if base = newest(snaps); base != nil {
			spec.LinkDest = base.Path
		}
	}
	// A working tree left by a failed run is reused as it is; what that
	// run transferred is not in this run's figures.
	resumed := dirHasEntries(spec.Dest)
	if err := os.MkdirAll(spec.Dest, 0o755); err != nil {
		return fail(fmt.Errorf("create working tree: %w", err))
	}
	if len(rules) > 0 {
		if spec.FilterFile, err = writeFilterFile(rules); err != nil {
			return fail(err)
		}
		defer os.Remove(spec.FilterFile)
	}

	r.e.obs.BackupPhase(r.req.Machine, r.m.UnitName, name, monitor.PhaseWaiting, nil)
	release, err := r.e.acquireSlot(ctx, r.alog, r.m.UnitName, name)
	if err != nil {
		return fail(fmt.Errorf("waiting for a backup slot: %w", err))
	}
	out := rsync.NewOutput(log)
	r.e.obs.BackupPhase(r.req.Machine, r.m.UnitName, name, monitor.PhaseRunning, out.Files)
	// Released as soon as rsync ends; the deferred call (release is
	// idempotent) frees the slot should a panic come first.
	defer release()
	syncBegin := r.e.now()
	stats, err = spec.Run(ctx, out)
	var re *rsync.Error
	if errors.As(err, &re) && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w: %w)", err, errInterrupted, context.Cause(ctx))
	}
	syncFinish := r.e.now()
	release()
	if err != nil {
		return fail(err)
	}
	if mode == ModeNone {
		return "", "", stats, nil
	}

	snap, err := r.e.newSnapshotName(snapDir, name, syncFinish)
	if err != nil {
		return fail(err)
	}
	var sum strings.Builder
	baseName := ""
	if base != nil {
		baseName = base.Name
		fmt.Fprintf(&sum, "Base snapshot: %s\n", base.Name)
	}
	sum.WriteString(statsSummary(stats))
	if err := commitSnapshot(spec.Dest, snapDir, snap, baseName, syncBegin.In(r.e.loc), syncFinish.In(r.e.loc), &stats); err != nil {
		return fail(err)
	}
	r.countSnapshot(log, snapDir, snap, stats, resumed)
	switch {
	case retErr != nil:
		fmt.Fprintf(&sum, "Retention not applied, no snapshot removed: %v\n", retErr)
		log.Warn("retention not applied", "err", retErr)
		r.alog.Errorf("Source %s: %v", name, retErr)
	case ret != nil:
		r.applyRetention(log, &sum, ret, mdir, name, snap)
	}
	return snap, sum.String(), stats, nil
}

// applyRetention deletes what ret does not keep, noting each removal in
// the summary. Failures are noted too but do not fail the backup.
func (r *machineRun) applyRetention(log *slog.Logger, sum *strings.Builder, ret *Retention, mdir, source, current string) {
	snaps, err := ListSnapshots(mdir, source, r.e.loc)
	if err != nil {
		fmt.Fprintf(sum, "Retention not applied: %v\n", err)
		log.Error("retention not applied", "err", err)
		return
	}
	snapDir := snapshotsDir(mdir, source)
	for _, s := range ret.ToDelete(snaps, r.e.now().In(r.e.loc)) {
		if s.dirName() == current {
			continue // cannot happen: the new snapshot is the newest
		}
		start := time.Now()
		freed, err := deleteSnapshot(snapDir, s)
		if err != nil {
			fmt.Fprintf(sum, "Failed to remove old snapshot: %s\n", s.Name)
			log.Error("snapshot removal failed", "snapshot", s.Name, "err", err)
			r.dropUsage(log, snapDir)
			continue
		}
		fmt.Fprintf(sum, "Removed old snapshot: %s\n", s.Name)
		log.Info("snapshot removed", "snapshot", s.Name, "duration", time.Since(start), "bytes", freed)
		if err := addUsage(snapDir, -freed); err != nil {
			log.Warn("usage not updated", "err", err)
			r.dropUsage(log, snapDir)
		}
	}
}

// countSnapshot adds a new snapshot's data to its source's usage ledger:
// with link-dest, the files rsync transferred are the new inodes, the rest
// are links to the base. The first snapshot of a source starts the
// ledger; a snapshot made from a failed run's working tree drops it, as
// that run's files are in no figure, and so does one whose rsync printed
// no figures (it always counts the source's top directory).
func (r *machineRun) countSnapshot(log *slog.Logger, snapDir, snap string, stats rsync.TransferStats, resumed bool) {
	if resumed || stats.Files == 0 {
		r.dropUsage(log, snapDir)
		return
	}
	_, known, err := readUsage(snapDir)
	switch {
	case err != nil:
		log.Warn("usage not updated", "err", err)
		r.dropUsage(log, snapDir)
	case known:
		if err := addUsage(snapDir, stats.TransferredSize); err != nil {
			log.Warn("usage not updated", "err", err)
			r.dropUsage(log, snapDir)
		}
	case onlyDir(snapDir, snap):
		if err := writeUsage(snapDir, stats.TransferredSize); err != nil {
			log.Warn("usage not updated", "err", err)
		}
	}
}

// dropUsage makes the source's usage unknown, logging a failure.
func (r *machineRun) dropUsage(log *slog.Logger, snapDir string) {
	if err := dropUsage(snapDir); err != nil {
		log.Warn("usage not updated", "err", err)
	}
}

// dirHasEntries reports whether dir exists and is not empty.
func dirHasEntries(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) > 0
}

// onlyDir reports whether name is the only directory in snapDir: nothing
// else (a snapshot, a "save" tree, a removal left over) holds data there.
func onlyDir(snapDir, name string) bool {
	entries, err := os.ReadDir(snapDir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != name {
			return false
		}
	}
	return true
}

// newSnapshotName picks an unused name for a snapshot finished at t.
func (e *Engine) newSnapshotName(snapDir, source string, t time.Time) (string, error) {
	for range 100 {
		name := snapshotName(source, t.In(e.loc), e.randHex())
		_, err1 := os.Lstat(filepath.Join(snapDir, name))
		_, err2 := os.Lstat(filepath.Join(snapDir, name+".json"))
		if errors.Is(err1, os.ErrNotExist) && errors.Is(err2, os.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("no free snapshot name for %s at %s", source, t.Format(stampLayout))
}
