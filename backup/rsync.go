package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// tailLines is how much of rsync's output a failure summary keeps.
	tailLines = 20
	// maxLineLen truncates single output lines (a long file name) in logs
	// and summaries.
	maxLineLen = 1000
	// rsyncKillDelay is how long a cancelled rsync's process group gets
	// after SIGTERM before SIGKILL.
	rsyncKillDelay = 2 * time.Second
	// rsyncWaitDelay is the last resort: after it, Wait kills rsync and
	// abandons its output even if some process still holds it open.
	rsyncWaitDelay = 10 * time.Second
)

// errInterrupted marks work stopped because its context ended; the
// context's cause follows it in the message.
var errInterrupted = errors.New("interrupted")

// RsyncError is an unsuccessful rsync run. Exit codes 0 and 24 ("some
// files vanished before they could be transferred") are success and never
// produce one.
type RsyncError struct {
	// Code is rsync's exit status, or -1 if it was killed by a signal.
	Code int
	// Tail holds the last lines rsync printed.
	Tail []string
}

func (e *RsyncError) Error() string {
	if e.Code < 0 {
		return "rsync was killed"
	}
	return fmt.Sprintf("rsync exited with return code %d", e.Code)
}

// rsyncSucceeded reports whether an exit code counts as a good backup
// (docs/protocol.md §5.3 step 3).
func rsyncSucceeded(code int) bool { return code == 0 || code == 24 }

// pullSpec is everything one rsync pull needs.
type pullSpec struct {
	addr       string // host:port of the agent's rsync daemon
	user, pass string
	source     string
	dest       string // the working tree
	linkDest   string // absolute path of the base snapshot, or ""
	inplace    bool   // snapshot mode "none"
	hardLinks  bool
	filterFile string
	bwlimit    string
}

// rsyncArgs returns the arguments of docs/protocol.md §5.3 step 3, in the old
// code's order. The password is never among them.
func rsyncArgs(p pullSpec) []string {
	args := []string{"--archive", "--compress", "--numeric-ids", "--delete", "--delete-excluded", "--verbose", "--stats"}
	if p.linkDest != "" {
		args = append(args, "--link-dest="+p.linkDest)
	}
	if p.inplace {
		args = append(args, "--inplace")
	}
	if p.hardLinks {
		args = append(args, "--hard-links")
	}
	if p.filterFile != "" {
		args = append(args, "--filter=merge "+p.filterFile)
	}
	if p.bwlimit != "" {
		args = append(args, "--bwlimit="+p.bwlimit)
	}
	host, port, _ := net.SplitHostPort(p.addr)
	url := "rsync://" + p.user + "@" + net.JoinHostPort(host, port) + "/" + p.source + "/"
	return append(args, url, strings.TrimSuffix(p.dest, "/")+"/")
}

// rsyncProgress is what a running rsync has told so far.
type rsyncProgress struct {
	// files counts the file lines of --verbose output.
	files atomic.Int64
}

// runRsync runs command with args, RSYNC_PASSWORD only in its environment,
// streaming its output to log at debug level and counting into progress
// (which may be nil). It returns the figures of rsync's --stats block
// (zero where it printed none) and nil or an *RsyncError; when ctx ends
// rsync gets SIGTERM, and the error also wraps the context's cause.
func runRsync(ctx context.Context, log *slog.Logger, command string, args []string, password string, progress *rsyncProgress) (TransferStats, error) {
	cmd := exec.CommandContext(ctx, command, args...)
	// Only what rsync needs: no secrets of ours, no inherited RSYNC_* knobs.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "RSYNC_PASSWORD=" + password}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var mu sync.Mutex // guards kill
	var kill *time.Timer
	cmd.Cancel = func() error {
		// The whole group: rsync forks a receiver, which on SIGTERM only
		// sets a flag and waits for the network, so it gets SIGKILL
		// if it is still there after a grace period.
		pgid := cmd.Process.Pid
		mu.Lock()
		kill = time.AfterFunc(rsyncKillDelay, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		mu.Unlock()
		return syscall.Kill(-pgid, syscall.SIGTERM)
	}
	cmd.WaitDelay = rsyncWaitDelay
	out := &lineLog{log: log, progress: progress}
	cmd.Stdout, cmd.Stderr = out, out
	log.Debug("rsync start", "args", args)
	start := time.Now()
	err := cmd.Run()
	mu.Lock()
	if kill != nil {
		kill.Stop()
	}
	mu.Unlock()
	out.flush()
	tail, stats := out.tail(), out.transferStats()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		log.Debug("rsync done", "code", 0, "duration", time.Since(start))
		return stats, nil
	case errors.As(err, &exitErr):
		code := exitErr.ExitCode()
		log.Debug("rsync done", "code", code, "duration", time.Since(start))
		if rsyncSucceeded(code) {
			return stats, nil
		}
		rerr := &RsyncError{Code: code, Tail: tail}
		if ctx.Err() != nil {
			return stats, fmt.Errorf("%w (%w: %w)", rerr, errInterrupted, context.Cause(ctx))
		}
		return stats, rerr
	default:
		return stats, fmt.Errorf("run %s: %w", command, err)
	}
}

// lineLog receives rsync's stdout and stderr (one writer, so exec writes
// from one goroutine at a time; the mutex is for tail readers), logs each
// line, keeps the last tailLines and reads the --stats block.
type lineLog struct {
	log      *slog.Logger
	progress *rsyncProgress // nil: not counted
	mu       sync.Mutex     // guards partial, last, inStats and stats
	partial  []byte
	last     []string
	// inStats is set from the block's first line ("Number of files: ")
	// on: what follows is figures, not file names.
	inStats bool
	stats   TransferStats
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			if len(l.partial) > 64<<10 {
				l.line(l.partial)
				l.partial = l.partial[:0]
			}
			break
		}
		l.line(append(l.partial, p[:i]...))
		l.partial = l.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (l *lineLog) line(b []byte) {
	s := strings.TrimRight(string(b), "\r")
	if len(s) > maxLineLen {
		s = s[:maxLineLen] + "…"
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	l.log.Debug("rsync", "line", s)
	if strings.HasPrefix(s, "Number of files: ") {
		l.inStats = true
	}
	if l.inStats {
		parseStatsLine(s, &l.stats)
	} else if l.progress != nil && isFileLine(s) {
		l.progress.files.Add(1)
	}
	l.last = append(l.last, s)
	if len(l.last) > tailLines {
		l.last = l.last[len(l.last)-tailLines:]
	}
}

func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.line(l.partial)
		l.partial = nil
	}
}

func (l *lineLog) transferStats() TransferStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

func (l *lineLog) tail() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.last...)
}

// isFileLine reports whether a line of rsync --verbose output (without
// --itemize-changes) names a file it transferred: not a directory (ends in
// "/"), not a deletion, not a warning, not the header or the closing
// totals. Symlinks ("a -> b") and hard links ("a => b") count.
func isFileLine(s string) bool {
	switch {
	case s == "", strings.HasSuffix(s, "/"),
		s == "receiving incremental file list", s == "receiving file list ... done",
		s == "sending incremental file list", s == "created directory" || strings.HasPrefix(s, "created directory "),
		strings.HasPrefix(s, "deleting "), strings.HasPrefix(s, "sent "), strings.HasPrefix(s, "total size is "),
		strings.HasPrefix(s, "rsync: "), strings.HasPrefix(s, "rsync error: "), strings.HasPrefix(s, "@ERROR"),
		strings.HasPrefix(s, "skipping "), strings.HasPrefix(s, "file has vanished: "),
		strings.HasPrefix(s, "cannot delete "), strings.HasPrefix(s, "IO error "),
		strings.HasPrefix(s, "WARNING: "), strings.HasPrefix(s, "Number of "):
		return false
	}
	return true
}
