package daemon

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/turku-backup/turku-storage/control"
	"github.com/turku-backup/turku-storage/monitor"
)

// serveControl answers the control socket ln from the live state under
// grp until ctx ends; maxBackups returns the backup slots' bound in force
// now (backup.Slots.Limit), published the published in force now.
func (w *Wiring) serveControl(ctx context.Context, grp *errgroup.Group, ln *control.Listener, state *monitor.State, maxBackups func() int, published func() *bool) error {
	srv, err := control.NewServer(control.Options{
		State:                state,
		Storage:              w.cfg.Name,
		Version:              w.version,
		Started:              time.Now(),
		MaxConcurrentBackups: maxBackups,
		Published:            published,
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
