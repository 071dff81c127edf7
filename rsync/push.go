package rsync

import (
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Push is one restore: rsync as the client of the agent's daemon,
// sending a snapshot (or a path in it) to the agent's restore module.
type Push struct {
	// Command is the rsync binary (rsync_command).
	Command        string
	User, Password string
	// Module is the agent's restore module, Port the restore session's
	// port on 127.0.0.1.
	Module string
	Port   int
	// Source is rsync's source argument; Relative is set for a subpath
	// ("SNAP/./SUB" with --relative recreates SUB under the module).
	Source   string
	Relative bool
	// DryRun lists what would change (--dry-run --itemize-changes)
	// instead of sending.
	DryRun bool
}

// Args are rsync's arguments: the agent's documented -avzP --numeric-ids
// (turku-agent README) with --info=progress2 instead of -v --progress,
// and --no-inc-recursive so the percentage covers the whole tree from the
// start. The password is never among them.
func (p Push) Args() []string {
	args := []string{"--archive", "--compress", "--numeric-ids", "--partial", "--no-inc-recursive"}
	if p.Relative {
		args = append(args, "--relative")
	}
	if p.DryRun {
		args = append(args, "--dry-run", "--itemize-changes")
	} else {
		args = append(args, "--info=progress2", "--no-human-readable")
	}
	return append(args, p.Source, DaemonURL(p.User, "127.0.0.1", strconv.Itoa(p.Port), p.Module))
}

// Progress is one --info=progress2 line.
type Progress struct {
	Bytes int64
	Pct   int
	// Rate is rsync's rate in IEC units ("12.34MiB/s").
	Rate string
}

// iecRate relabels a rate rsync prints ("12.34MB/s") in the IEC units the
// rest of the output uses ("12.34MiB/s"): rsync divides by 1024 and
// labels the result kB, MB, GB (progress.c), so only the label changes.
func iecRate(rate string) string {
	for _, u := range [][2]string{{"kB/s", "KiB/s"}, {"MB/s", "MiB/s"}, {"GB/s", "GiB/s"}, {"TB/s", "TiB/s"}} {
		if n, ok := strings.CutSuffix(rate, u[0]); ok {
			return n + u[1]
		}
	}
	return rate
}

// progress2Line matches rsync --info=progress2 lines:
// "  1234567  45%  12.34MB/s  0:00:10 (xfr#3, to-chk=10/20)".
var progress2Line = regexp.MustCompile(`^\s*([\d,]+)\s+(\d+)%\s+(\S+/s)\s+(\S+)`)

// ParseProgress reads an --info=progress2 line.
func ParseProgress(line string) (Progress, bool) {
	m := progress2Line.FindStringSubmatch(line)
	if m == nil {
		return Progress{}, false
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	if err != nil {
		return Progress{}, false
	}
	pct, _ := strconv.Atoi(m[2])
	return Progress{Bytes: n, Pct: pct, Rate: iecRate(m[3])}, true
}

// PushOutput says where a push's output goes.
type PushOutput struct {
	// Progress gets each progress line (none on a dry run).
	Progress func(Progress)
	// Line gets every other line of rsync's standard output: the
	// --itemize-changes list of a dry run, anything else rsync says.
	Line func(string)
	// Stderr gets rsync's standard error as it comes; nil discards it.
	Stderr io.Writer
}

// Run pushes and returns nil when rsync exited 0, else an *Error whose
// Tail is the end of rsync's standard error, or an error saying why
// rsync could not be run. When ctx ends rsync is stopped as Cmd.Run
// says.
func (p Push) Run(ctx context.Context, out PushOutput) error {
	stdout := &lineWriter{cr: true, line: func(line string) {
		if line == "" {
			return
		}
		if pr, ok := ParseProgress(line); ok && !p.DryRun {
			out.Progress(pr)
			return
		}
		out.Line(line)
	}}
	var errTail tail
	var stderr io.Writer = &errTail
	if out.Stderr != nil {
		stderr = io.MultiWriter(out.Stderr, &errTail)
	}
	code, err := Cmd{Command: p.Command, Args: p.Args(), Password: p.Password, Stdout: stdout, Stderr: stderr}.Run(ctx)
	stdout.flush()
	switch {
	case err != nil:
		return err
	case code != 0:
		return &Error{Code: code, Tail: errTail.get()}
	}
	return nil
}
