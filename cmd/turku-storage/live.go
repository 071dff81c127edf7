package main

import (
	"context"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/control"
	"github.com/turku-backup/turku-storage/sshserver"
)

// liveSessions adapts the control registry to sshserver.SessionObserver.
type liveSessions struct{ live *control.Live }

func (l liveSessions) SessionStarted(s sshserver.SessionInfo) func() {
	return l.live.SessionStarted(control.SessionInfo(s))
}

// liveBackups adapts the control registry to backup.Observer.
type liveBackups struct{ live *control.Live }

func (l liveBackups) BackupWaiting(s backup.SourceInfo) func() {
	return l.live.BackupWaiting(control.BackupInfo(s))
}

func (l liveBackups) BackupRunning(s backup.SourceInfo) func() {
	return l.live.BackupRunning(control.BackupInfo(s))
}

// serveControl answers the control socket ln from live under grp until
// ctx ends.
func (w *wiring) serveControl(ctx context.Context, grp *errgroup.Group, ln *control.Listener, live *control.Live) error {
	vols := make([]control.Volume, 0, len(w.cfg.Volumes))
	for _, v := range w.cfg.Volumes {
		vols = append(vols, control.Volume{Name: v.Name, Path: v.Path, AcceptNew: v.AcceptNew, HighWaterPct: v.HighWaterPct})
	}
	srv, err := control.NewServer(control.Options{
		Live:                 live,
		Version:              versionString(),
		Started:              time.Now(),
		MaxConcurrentBackups: w.cfg.MaxConcurrentBackups,
		Volumes:              vols,
		ReportsDir:           filepath.Join(w.cfg.VarDir, "reports"),
		Logger:               w.log,
	})
	if err != nil {
		return err
	}
	grp.Go(func() error {
		defer ln.Close()
		return srv.Serve(ctx, ln)
	})
	return nil
}
