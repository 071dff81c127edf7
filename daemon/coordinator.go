package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/coordinator"
)

// coordinatorDB is the built-in coordinator's database under var_dir.
const coordinatorDB = "coordinator.sqlite3"

// CoordinatorDBPath is the built-in coordinator's database:
// VAR_DIR/coordinator.sqlite3.
func CoordinatorDBPath(cfg *config.Config) string { return filepath.Join(cfg.VarDir, coordinatorDB) }

// openCoordinator starts the built-in coordinator for this storage unit
// and returns its in-process transport; the wiring closes it.
func (w *Wiring) openCoordinator() (http.RoundTripper, error) {
	if err := os.MkdirAll(w.cfg.VarDir, 0o700); err != nil {
		return nil, fmt.Errorf("var_dir: %w", err)
	}
	signers, err := w.hostSigners()
	if err != nil {
		return nil, err
	}
	c, err := coordinator.New(coordinator.Options{
		DBPath:   CoordinatorDBPath(w.cfg),
		Logger:   w.log.With("component", "coordinator"),
		Location: w.cfg.Location,
		Storage: coordinator.StorageIdentity{
			Name:            w.cfg.Name,
			Secret:          w.cfg.Secret,
			SSHPingHost:     w.cfg.SSHPingHost,
			SSHPingPort:     w.cfg.SSHPingPort,
			SSHPingUser:     w.cfg.SSHPingUser,
			SSHPingHostKeys: w.advertisedKeys(signers),
		},
		RegistrationSecret: w.cfg.MachineRegistrationSecret,
	})
	if err != nil {
		return nil, err
	}
	w.coord = c
	w.closers = append(w.closers, func() { c.Close() })
	return c.Transport(), nil
}

// serveCoordinator serves the built-in coordinator's agent-facing API on
// coordinator_listen under grp, when there is one.
func (w *Wiring) serveCoordinator(ctx context.Context, grp *errgroup.Group) (net.Addr, error) {
	if w.coord == nil {
		return nil, nil
	}
	ln, err := net.Listen("tcp", w.cfg.CoordinatorListen)
	if err != nil {
		return nil, fmt.Errorf("coordinator_listen: %w", err)
	}
	srv, err := w.coord.NewServer(ln, coordinator.ServerOptions{
		TLSCert:    w.cfg.CoordinatorTLSCert,
		TLSKey:     w.cfg.CoordinatorTLSKey,
		Registered: w.machinesChanged,
	})
	if err != nil {
		return nil, fmt.Errorf("coordinator_tls_cert/coordinator_tls_key: %w", err)
	}
	w.log.Info("built-in coordinator listening", "url", srv.URL())
	grp.Go(func() error { return srv.Serve(ctx) })
	return srv.Addr(), nil
}
