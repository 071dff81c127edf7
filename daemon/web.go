package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/monitor"
	"github.com/turku-backup/turku-storage/web"
)

// serveWeb listens on web_listen and serves the read-only dashboard under
// grp until ctx ends. It returns the address, or nil when web_listen is
// empty.
func serveWeb(ctx context.Context, grp *errgroup.Group, configDir string, cfg *config.Config, state *monitor.State, hist *history.Store, log *slog.Logger) (net.Addr, error) {
	if cfg.WebListen == "" {
		return nil, nil
	}
	var users map[string][]byte
	if cfg.WebAuthFile != "" {
		var err error
		if users, err = config.ReadWebAuthFile(cfg.WebAuthFile); err != nil {
			return nil, fmt.Errorf("web_auth_file: %w", err)
		}
	}
	// The restore command line the machine pages show names the
	// configuration directory unless it is the default.
	dir := ""
	if configDir != config.DefaultDir {
		if abs, err := filepath.Abs(configDir); err == nil {
			dir = abs
		}
	}
	srv, err := web.New(web.Options{
		Name:      cfg.Name,
		State:     state,
		VarDir:    cfg.VarDir,
		Location:  cfg.Location,
		History:   hist,
		Staleness: history.Staleness{MaxAge: cfg.WebMaxAge, WarnAge: cfg.WebWarnAge},
		ConfigDir: dir,
		Users:     users,
		TLSCert:   cfg.WebTLSCert,
		TLSKey:    cfg.WebTLSKey,
		Logger:    log,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.WebListen)
	if err != nil {
		return nil, fmt.Errorf("web_listen: %w", err)
	}
	grp.Go(func() error { return srv.Serve(ctx, ln) })
	log.Info("serving the dashboard", "web_listen", ln.Addr().String(), "tls", cfg.WebTLSCert != "", "auth", len(users) > 0)
	return ln.Addr(), nil
}
