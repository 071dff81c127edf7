package backup

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/rsync"
)

// PanicError is a panic recovered while backing up one source: that
// source fails and is reported, the others still run.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("internal error (panic: %v)", e.Value) }

// safeBackup is backup with a panic turned into the source's failure,
// logged with its stack: one bad source must not end every backup the
// daemon runs.
func (r *machineRun) safeBackup(ctx context.Context, log *slog.Logger, name string, src apiclient.Source) (snap, summary string, stats rsync.TransferStats, err error) {
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Value: v, Stack: debug.Stack()}
			log.Error("panic recovered", "err", pe, "stack", string(pe.Stack))
			snap, summary, stats, err = "", failureSummary(pe), rsync.TransferStats{}, pe
		}
	}()
	return r.backup(ctx, log, name, src)
}
