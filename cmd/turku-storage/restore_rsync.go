package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
)

// restoreRun is one rsync push to an agent's restore module.
type restoreRun struct {
	g              *globals
	rsync          string
	user, password string
	module         string
	port           int
	src            restoreSource
	dryRun         bool
}

// args are rsync's arguments: the agent's documented -avzP --numeric-ids
// (turku-agent README) with --info=progress2 instead of -v --progress,
// and --no-inc-recursive so the percentage covers the whole tree from the
// start. The password is never among them.
func (r *restoreRun) args() []string {
	args := []string{"--archive", "--compress", "--numeric-ids", "--partial", "--no-inc-recursive"}
	if r.src.Relative {
		args = append(args, "--relative")
	}
	if r.dryRun {
		args = append(args, "--dry-run", "--itemize-changes")
	} else {
		args = append(args, "--info=progress2", "--no-human-readable")
	}
	url := fmt.Sprintf("rsync://%s@127.0.0.1:%d/%s/", r.user, r.port, r.module)
	return append(args, r.src.Arg, url)
}

// progress2Line matches rsync --info=progress2 lines:
// "  1234567  45%  12.34MB/s  0:00:10 (xfr#3, to-chk=10/20)".
var progress2Line = regexp.MustCompile(`^\s*([\d,]+)\s+(\d+)%\s+(\S+/s)\s+(\S+)`)

// progress is one parsed progress2 line.
type progress struct {
	bytes int64
	pct   int
	rate  string
}

func parseProgress(line string) (progress, bool) {
	m := progress2Line.FindStringSubmatch(line)
	if m == nil {
		return progress{}, false
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	if err != nil {
		return progress{}, false
	}
	pct, _ := strconv.Atoi(m[2])
	return progress{bytes: n, pct: pct, rate: iecRate(m[3])}, true
}

// reporter shows progress: a bar on a terminal, else a line every 10 %.
type reporter struct {
	w       io.Writer
	bar     *progressbar.ProgressBar
	lastPct int
	last    progress
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

func (r *reporter) update(p progress) {
	r.last, r.seen = p, true
	if r.bar != nil {
		r.bar.Describe(fmt.Sprintf("%s at %s", humanize.IBytes(uint64(p.bytes)), p.rate))
		r.bar.Set(p.pct)
		return
	}
	if p.pct/10 > r.lastPct/10 || r.lastPct < 0 {
		r.lastPct = p.pct
		fmt.Fprintf(r.w, "progress: %d%% %d bytes %s\n", p.pct, p.bytes, p.rate)
	}
}

func (r *reporter) finish() {
	if r.bar != nil {
		r.bar.Finish()
		fmt.Fprintln(r.w)
	}
}

// splitCRLF splits rsync's output at \r (progress redraws) and \n.
func splitCRLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// run pushes the files. It returns an *exitError saying what went wrong.
func (r *restoreRun) run(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, r.rsync, r.args()...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "RSYNC_PASSWORD=" + r.password}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr tailBuffer
	cmd.Stderr = io.MultiWriter(r.g.stderr, &stderr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", r.rsync, err)
	}
	rep := newReporter(r.g.stderr)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(splitCRLF)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if p, ok := parseProgress(line); ok && !r.dryRun {
			rep.update(p)
			continue
		}
		// --itemize-changes lines on a dry run, anything else rsync says.
		fmt.Fprintln(r.g.stdout, line)
	}
	io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	rep.finish()
	var ee *exec.ExitError
	switch {
	case err == nil:
		if r.dryRun {
			fmt.Fprintln(r.g.stderr, "Dry run: nothing was sent.")
		} else if rep.seen {
			fmt.Fprintf(r.g.stderr, "Restored: %d bytes sent.\n", rep.last.bytes)
		}
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("restore interrupted: %w", context.Cause(ctx))
	case errors.As(err, &ee):
		tail := stderr.String()
		if strings.Contains(tail, "auth failed") {
			return &exitError{code: exitRsyncAuth, err: fmt.Errorf("the agent's rsync daemon refused user %q: wrong user or password (turku-agent-ping --restore prints both)", r.user)}
		}
		if strings.Contains(tail, "Unknown module") {
			return &exitError{code: exitRsyncFailed, err: fmt.Errorf("the agent has no rsync module %q (its restore_module; see --module)", r.module)}
		}
		return &exitError{code: exitRsyncFailed, err: fmt.Errorf("rsync exited with return code %d", ee.ExitCode())}
	default:
		return fmt.Errorf("run %s: %w", r.rsync, err)
	}
}

// tailBuffer keeps the last 16 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 16<<10 {
		t.buf = t.buf[len(t.buf)-16<<10:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
