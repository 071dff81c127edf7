package backup

import (
	"cmp"
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/monitor"
)

// Seed records in state what the disk says at start: every source's
// newest snapshot as its last success (read through the snapshot index), then the attempt history (every
// source's failures in a row and last error). units names the machines
// the key cache knows. What cannot be read is logged and skipped.
func Seed(ctx context.Context, state *monitor.State, varDir string, loc *time.Location, units map[string]string, log *slog.Logger) {
	start := time.Now()
	// Through the snapshot index: at start only what changed since the
	// last listing is read (the newest snapshot of each source is all the
	// live state takes).
	machines, err := Summaries(ctx, varDir, IndexOptions{Location: loc, Log: log})
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("reading the snapshots on disk for metrics failed", "err", err)
		}
		return
	}
	n := 0
	for _, m := range machines {
		if m.Err != nil {
			log.Warn("reading a machine's snapshots for metrics failed", "machine", m.UUID, "err", m.Err)
		}
		for _, s := range m.Sources {
			if latest := s.Newest; latest != nil {
				state.SeedSource(m.UUID, units[m.UUID], s.Name, latest.SyncFinish)
				n++
			}
		}
	}
	latest, err := history.New(filepath.Join(varDir, history.DirName)).Latest()
	if err != nil {
		log.Warn("reading the backup history for metrics failed", "err", err)
	}
	attempts := 0
	for uuid, srcs := range latest {
		for name, a := range srcs {
			state.SeedHistory(uuid, cmp.Or(units[uuid], a.Unit), name, sourceHistory(a))
			attempts++
		}
	}
	log.Info("read the snapshots and backup history on disk", "machines", len(machines), "sources", n,
		"sources_with_history", attempts, "duration", time.Since(start))
}

// sourceHistory is what the monitor takes of a source's newest record.
func sourceHistory(a history.Attempt) monitor.SourceHistory {
	h := monitor.SourceHistory{LastSuccess: a.LastSuccess, LastAttempt: a.End, Failures: a.Failures, FailingSince: a.FailingSince}
	if !a.Success {
		h.LastError = a.FirstLine()
	}
	return h
}
