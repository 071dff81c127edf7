package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"

	"github.com/turku-backup/turku-storage/restore"
	"github.com/turku-backup/turku-storage/rsync"
)

// restoreRun is one rsync push to an agent's restore module.
type restoreRun struct {
	g              *globals
	rsync          string
	user, password string
	module         string
	port           int
	src            restore.Source
	dryRun         bool
	// sent is what rsync reported sending, once run returns.
	sent int64
}

// reporter shows progress: a bar on a terminal, else a line every 10 %.
type reporter struct {
	w       io.Writer
	bar     *progressbar.ProgressBar
	lastPct int
	last    rsync.Progress
	seen    bool
}

func newReporter(w io.Writer) *reporter {
	r := &reporter{w: w, lastPct: -1}
	if isTerminal(w) {
		r.bar = progressbar.NewOptions(100,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("restore"),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(false),
		)
	}
	return r
}

func (r *reporter) update(p rsync.Progress) {
	r.last, r.seen = p, true
	if r.bar != nil {
		r.bar.Describe(fmt.Sprintf("%s at %s", humanize.IBytes(uint64(p.Bytes)), p.Rate))
		r.bar.Set(p.Pct)
		return
	}
	if p.Pct/10 > r.lastPct/10 || r.lastPct < 0 {
		r.lastPct = p.Pct
		fmt.Fprintf(r.w, "progress: %d%% %d bytes %s\n", p.Pct, p.Bytes, p.Rate)
	}
}

func (r *reporter) finish() {
	if r.bar != nil {
		r.bar.Finish()
		fmt.Fprintln(r.w)
	}
}

// run pushes the files with the rsync package. It returns an *exitError
// saying what went wrong.
func (r *restoreRun) run(ctx context.Context) error {
	p := rsync.Push{
		Command: r.rsync, User: r.user, Password: r.password, Module: r.module, Port: r.port,
		Source: r.src.Arg, Relative: r.src.Relative, DryRun: r.dryRun,
	}
	rep := newReporter(r.g.stderr)
	err := p.Run(ctx, rsync.PushOutput{
		Progress: rep.update,
		// --itemize-changes lines on a dry run, anything else rsync says.
		Line:   func(line string) { fmt.Fprintln(r.g.stdout, line) },
		Stderr: r.g.stderr,
	})
	rep.finish()
	r.sent = rep.last.Bytes
	var re *rsync.Error
	switch {
	case err == nil:
		if r.dryRun {
			fmt.Fprintln(r.g.stderr, "Dry run: nothing was sent.")
		} else if rep.seen {
			fmt.Fprintf(r.g.stderr, "Restored: %d bytes sent.\n", rep.last.Bytes)
		}
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("restore interrupted: %w", context.Cause(ctx))
	case errors.As(err, &re) && re.AuthFailed():
		return &exitError{code: exitRsyncAuth, err: fmt.Errorf("the agent's rsync daemon refused user %q: wrong user or password (turku-agent-ping --restore prints both)", r.user)}
	case errors.As(err, &re) && re.UnknownModule():
		return &exitError{code: exitRsyncFailed, err: fmt.Errorf("the agent has no rsync module %q (its restore_module; see --module)", r.module)}
	case errors.As(err, &re):
		return &exitError{code: exitRsyncFailed, err: re}
	default:
		return err
	}
}
