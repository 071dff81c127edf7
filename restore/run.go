package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/control"
	"github.com/turku-backup/turku-storage/internal/words"
	"github.com/turku-backup/turku-storage/rsync"
)

// Options is one `restore`: what to send where, and how to reach serve
// and the agent.
type Options struct {
	// Machine, Source and Snapshot are as the operator named them
	// (Snapshot "" is "latest"); Path is a path inside the snapshot.
	Machine, Source, Snapshot, Path string
	// Module is the agent's restore module; DryRun lists instead.
	Module string
	DryRun bool
	// Wait is how long to wait for the machine's restore session.
	Wait time.Duration
	// User and PasswordFile are the agent's rsync login as given
	// (Credentials asks on Stdin for what is missing).
	User, PasswordFile string
	Stdin              *os.File

	VarDir        string
	Location      *time.Location
	ControlSocket string
	RsyncCommand  string
	// Registered returns the machines the key cache lists, to resolve
	// Machine (backup.ResolveMachine).
	Registered func() (map[string]apiclient.MachineInfo, error)

	// Stdout gets rsync's lines (a dry run's list), Stderr the
	// operator's messages and the progress, as a bar when Terminal.
	Stdout, Stderr io.Writer
	Terminal       bool
}

// PushError is a failed push: the agent's rsync daemon refused the login
// (Auth) or rsync failed otherwise. `restore` exits 4 or 5 on it.
type PushError struct {
	Auth bool
	Err  error
}

func (e *PushError) Error() string { return e.Err.Error() }
func (e *PushError) Unwrap() error { return e.Err }

// Run sends the snapshot opts names to the machine's restore session and
// has serve log who restored what, before and after. Bad input is an
// error naming it; a missing session a *NoSessionError; a failed rsync a
// *PushError.
func Run(ctx context.Context, opts Options) error {
	if s := opts.Source; s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("source %q: not a source name", s)
	}
	if opts.Module == "" || strings.ContainsAny(opts.Module, "/\x00@: ") {
		return fmt.Errorf("--module %q: not an rsync module name", opts.Module)
	}
	uuid, dir, err := backup.ResolveMachine(opts.VarDir, opts.Machine, opts.Registered)
	if err != nil {
		return err
	}
	snaps, err := backup.ListSnapshots(dir, opts.Source, opts.Location)
	if err != nil {
		return err
	}
	if len(snaps) == 0 {
		sources, _ := backup.ListSources(dir)
		return fmt.Errorf("machine %s has no snapshots of source %q (sources: %s)", opts.Machine, opts.Source, words.Dash(strings.Join(sources, ", ")))
	}
	snap, err := Pick(snaps, opts.Source, opts.Snapshot, opts.Location)
	if err != nil {
		return err
	}
	src, err := Subpath(snap.Path, opts.Path)
	if err != nil {
		return err
	}
	sess, err := FindSession(ctx, opts.ControlSocket, uuid, opts.Machine, opts.Wait, opts.Stderr)
	if err != nil {
		return err
	}
	user, pass, err := Credentials(opts.User, opts.PasswordFile, opts.Stdin, opts.Stderr)
	if err != nil {
		return err
	}
	// The agent's session may have ended while root typed; its port may
	// even belong to another listener by now.
	if err := Recheck(ctx, opts.ControlSocket, uuid, opts.Machine, sess); err != nil {
		return err
	}
	fmt.Fprintf(opts.Stderr, "Restoring %s of %s%s to module %s on port %d\n", snap.Name, words.Machine(uuid, sess.Unit),
		pathNote(opts.Path), opts.Module, sess.RestorePort)
	p := Push{Rsync: opts.RsyncCommand, User: user, Password: pass, Module: opts.Module, Port: sess.RestorePort,
		Source: src, DryRun: opts.DryRun, Stdout: opts.Stdout, Stderr: opts.Stderr, Terminal: opts.Terminal}
	rl := control.RestoreLog{
		Event: control.RestoreStarted, Machine: uuid, Unit: sess.Unit, Source: opts.Source, Snapshot: snap.Name,
		Path: opts.Path, Module: opts.Module, Port: sess.RestorePort, DryRun: opts.DryRun, User: loginName(),
	}
	logRestore(ctx, opts, rl)
	sent, err := p.Run(ctx)
	rl.Event, rl.Bytes, rl.Result = control.RestoreFinished, sent, "ok"
	if err != nil {
		rl.Result = err.Error()
	}
	logRestore(context.WithoutCancel(ctx), opts, rl)
	return err
}

// logRestore has serve log rl: serve's log is where an operator looks for
// who restored what. A serve that cannot be told does not stop the
// restore; the operator is told.
func logRestore(ctx context.Context, opts Options, rl control.RestoreLog) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := control.LogRestore(lctx, opts.ControlSocket, rl); err != nil {
		fmt.Fprintf(opts.Stderr, "warning: serve did not log the restore's %s: %v\n", rl.Event, err)
	}
}

// loginName is who ran restore, as the environment says: sudo's SUDO_USER
// first, else the login name.
func loginName() string {
	for _, k := range []string{"SUDO_USER", "LOGNAME", "USER"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

func pathNote(p string) string {
	if p == "" {
		return ""
	}
	return ", path " + p + ","
}

// Push is one rsync push to an agent's restore module.
type Push struct {
	Rsync          string
	User, Password string
	Module         string
	Port           int
	Source         Source
	DryRun         bool
	// Stdout gets rsync's lines, Stderr the progress (a bar when
	// Terminal) and the result.
	Stdout, Stderr io.Writer
	Terminal       bool
}

// Run pushes the files with the rsync package and returns what rsync
// reported sending. A failure of rsync is a *PushError saying what went
// wrong.
func (p Push) Run(ctx context.Context) (int64, error) {
	rp := rsync.Push{
		Command: p.Rsync, User: p.User, Password: p.Password, Module: p.Module, Port: p.Port,
		Source: p.Source.Arg, Relative: p.Source.Relative, DryRun: p.DryRun,
	}
	rep := newReporter(p.Stderr, p.Terminal)
	err := rp.Run(ctx, rsync.PushOutput{
		Progress: rep.update,
		// --itemize-changes lines on a dry run, anything else rsync says.
		Line:   func(line string) { fmt.Fprintln(p.Stdout, line) },
		Stderr: p.Stderr,
	})
	rep.finish()
	sent := rep.last.Bytes
	var re *rsync.Error
	switch {
	case err == nil:
		if p.DryRun {
			fmt.Fprintln(p.Stderr, "Dry run: nothing was sent.")
		} else if rep.seen {
			fmt.Fprintf(p.Stderr, "Restored: %d bytes sent.\n", rep.last.Bytes)
		}
		return sent, nil
	case ctx.Err() != nil:
		return sent, fmt.Errorf("restore interrupted: %w", context.Cause(ctx))
	case errors.As(err, &re) && re.AuthFailed():
		return sent, &PushError{Auth: true, Err: fmt.Errorf("the agent's rsync daemon refused user %q: wrong user or password (turku-agent-ping --restore prints both)", p.User)}
	case errors.As(err, &re) && re.UnknownModule():
		return sent, &PushError{Err: fmt.Errorf("the agent has no rsync module %q (its restore_module; see --module)", p.Module)}
	case errors.As(err, &re):
		return sent, &PushError{Err: re}
	default:
		return sent, err
	}
}
