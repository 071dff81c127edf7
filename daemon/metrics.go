package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/monitor"
)

// newMonitor builds the live state serve reports into: volumes (as
// volumes returns them, the current configuration's) and the report spool
// are read from disk whenever a scrape or status asks; spool, when not
// nil, gives the spool's size against its cap.
func newMonitor(cfg *config.Config, volumes func() []config.Volume, spool func() backup.SpoolUsage) *monitor.State {
	var reportSpool func() monitor.SpoolUsage
	if spool != nil {
		reportSpool = func() monitor.SpoolUsage {
			u := spool()
			return monitor.SpoolUsage{Reports: u.Reports, Bytes: u.Bytes, MaxReports: u.MaxReports, MaxBytes: u.MaxBytes, Dropped: u.Dropped}
		}
	}
	return monitor.New(monitor.Options{
		Volumes:        func() []monitor.Volume { return backup.VolumeStatus(cfg.VarDir, BackupVolumes(volumes())) },
		SpooledReports: func() int { return backup.SpooledReports(cfg.VarDir) },
		ReportSpool:    reportSpool,
	})
}

// seedMonitor seeds the live state from the disk (backup.Seed), with the
// unit names of the assigned machines the state already holds (from the
// key cache loaded at start, or a refresh since): the cache is not read
// a second time.
func seedMonitor(ctx context.Context, state *monitor.State, cfg *config.Config, log *slog.Logger) {
	assigned, _ := state.Assigned()
	units := make(map[string]string, len(assigned))
	for uuid, a := range assigned {
		units[uuid] = a.Unit
	}
	backup.Seed(ctx, state, cfg.VarDir, cfg.Location, units, log)
}

// metricsHandler serves the Prometheus text format at /metrics only: the
// standard Go and process collectors and the state's live figures,
// gathered at each scrape, and the per-source and per-machine families
// from the state's cache (monitor.State.Handler).
func metricsHandler(state *monitor.State, log *slog.Logger) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		state.LiveCollector(),
		state.OrphanCollector(),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", state.Handler(reg, func(err error) {
		log.Error("metrics: gathering failed", "err", err)
	}))
	return mux, nil
}

// serveMetrics listens on metrics_listen and serves /metrics under grp
// until ctx ends. It returns the address, or nil when metrics_listen is
// empty.
func serveMetrics(ctx context.Context, grp *errgroup.Group, addr string, state *monitor.State, log *slog.Logger) (net.Addr, error) {
	if addr == "" {
		return nil, nil
	}
	h, err := metricsHandler(state, log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	grp.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics: %w", err)
		}
		return nil
	})
	grp.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	log.Info("serving metrics", "metrics_listen", ln.Addr().String())
	return ln.Addr(), nil
}
