package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/control"
	"github.com/turku-backup/turku-storage/restore"
)

// Exit statuses of restore besides 0 and 1 (bad input, anything else).
const (
	exitNoRestoreSession = 3
	exitRsyncAuth        = 4
	exitRsyncFailed      = 5
)

// restoreFlags are restore's options.
type restoreFlags struct {
	path         string
	wait         time.Duration
	user         string
	passwordFile string
	module       string
	dryRun       bool
}

func newRestoreCmd(g *globals) *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore MACHINE SOURCE [SNAPSHOT]",
		Short: "Push a snapshot back to a machine in restore mode",
		Long: `Sends a snapshot (or one path in it, --path) to a machine whose agent is in
restore mode, through that agent's restore session with the running serve.

MACHINE is a UUID, an ENV-SERVICE-UNIT link name or a unit name. SNAPSHOT
is "latest" (the default), a snapshot name, or a date or time (2026-11-20,
2026-11-20T15:04, in the configured timezone) meaning the last snapshot
finished before it.

Start restore mode on the machine with "turku-agent-ping --restore"; it
prints a user name and a password for this session. If the machine has no
restore session yet, restore waits up to --wait for it. The user comes from
--user, the password from --password-file, RSYNC_PASSWORD, or a prompt
(without echo) on a terminal.

The files are pushed with rsync as the agent documents (--archive
--numeric-ids --compress --partial) into the agent's restore module
(--module, the agent's restore_module), under the same relative path as in
the snapshot. Nothing on the storage unit is changed. --dry-run lists what
would change on the machine instead.

Exit status: 0 done; 1 bad input (machine, source, snapshot, path) or
another error; 3 no restore session; 4 the agent's rsync daemon refused the
user or password; 5 rsync failed otherwise.`,
		Args:              cobra.RangeArgs(2, 3),
		ValidArgsFunction: completeMachineSource(g, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			snapshot := ""
			if len(args) == 3 {
				snapshot = args[2]
			}
			return runRestore(cmd.Context(), g, f, args[0], args[1], snapshot)
		},
	}
	cmd.Flags().StringVar(&f.path, "path", "", "restore only this path inside the snapshot")
	cmd.Flags().DurationVar(&f.wait, "wait", 5*time.Minute, "how long to wait for the machine's restore session")
	cmd.Flags().StringVar(&f.user, "user", "", "the rsync user turku-agent-ping --restore printed")
	cmd.Flags().StringVar(&f.passwordFile, "password-file", "", "read the rsync password from this file (else RSYNC_PASSWORD, else a prompt)")
	cmd.Flags().StringVar(&f.module, "module", "turku-restore", "the agent's restore module (its restore_module)")
	cmd.Flags().BoolVarP(&f.dryRun, "dry-run", "n", false, "list what would change on the machine; send nothing")
	return cmd
}

func runRestore(ctx context.Context, g *globals, f restoreFlags, machine, source, snapshot string) error {
	_, cfg, err := g.loadWithLog()
	if err != nil {
		return err
	}
	if source == "" || source == "." || source == ".." || strings.ContainsAny(source, "/\x00") {
		return fmt.Errorf("source %q: not a source name", source)
	}
	if f.module == "" || strings.ContainsAny(f.module, "/\x00@: ") {
		return fmt.Errorf("--module %q: not an rsync module name", f.module)
	}
	uuid, dir, err := backup.ResolveMachine(cfg.VarDir, machine, registeredMachines(cfg))
	if err != nil {
		return err
	}
	snaps, err := backup.ListSnapshots(dir, source, cfg.Location)
	if err != nil {
		return err
	}
	if len(snaps) == 0 {
		sources, _ := backup.ListSources(dir)
		return fmt.Errorf("machine %s has no snapshots of source %q (sources: %s)", machine, source, dash(strings.Join(sources, ", ")))
	}
	snap, err := restore.Pick(snaps, source, snapshot, cfg.Location)
	if err != nil {
		return err
	}
	src, err := restore.Subpath(snap.Path, f.path)
	if err != nil {
		return err
	}

	sess, err := restore.FindSession(ctx, cfg.ControlSocket, uuid, machine, f.wait, g.stderr)
	if err != nil {
		return noSession(err)
	}
	user, pass, err := restoreCredentials(g, f)
	if err != nil {
		return err
	}
	// The agent's session may have ended while root typed; its port may
	// even belong to another listener by now.
	if err := restore.Recheck(ctx, cfg.ControlSocket, uuid, machine, sess); err != nil {
		return noSession(err)
	}
	fmt.Fprintf(g.stderr, "Restoring %s of %s%s to module %s on port %d\n", snap.Name, machineLabel(uuid, sess.Unit),
		pathNote(f.path), f.module, sess.RestorePort)
	r := &restoreRun{
		g: g, rsync: cfg.RsyncCommand, user: user, password: pass, module: f.module,
		port: sess.RestorePort, src: src, dryRun: f.dryRun,
	}
	rl := control.RestoreLog{
		Event: control.RestoreStarted, Machine: uuid, Unit: sess.Unit, Source: source, Snapshot: snap.Name,
		Path: f.path, Module: f.module, Port: sess.RestorePort, DryRun: f.dryRun, User: loginName(),
	}
	logRestore(ctx, g, cfg.ControlSocket, rl)
	err = r.run(ctx)
	rl.Event, rl.Bytes, rl.Result = control.RestoreFinished, r.sent, "ok"
	if err != nil {
		rl.Result = err.Error()
	}
	logRestore(context.WithoutCancel(ctx), g, cfg.ControlSocket, rl)
	return err
}

// logRestore has serve log rl: serve's log is where an operator looks for
// who restored what. A serve that cannot be told does not stop the
// restore; the operator is told.
func logRestore(ctx context.Context, g *globals, socket string, rl control.RestoreLog) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := control.LogRestore(lctx, socket, rl); err != nil {
		fmt.Fprintf(g.stderr, "warning: serve did not log the restore's %s: %v\n", rl.Event, err)
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

// noSession gives restore's exit status to the restore package's "no
// restore session".
func noSession(err error) error {
	var ns *restore.NoSessionError
	if errors.As(err, &ns) {
		return &exitError{code: exitNoRestoreSession, err: err}
	}
	return err
}

// restoreCredentials returns the agent's per-session rsync login: --user
// (or a prompt), and the password from --password-file, RSYNC_PASSWORD or
// a prompt without echo.
func restoreCredentials(g *globals, f restoreFlags) (user, pass string, err error) {
	stdin := int(os.Stdin.Fd())
	interactive := term.IsTerminal(stdin)
	user = f.user
	if user == "" {
		if !interactive {
			return "", "", errors.New("no --user: give the user turku-agent-ping --restore printed")
		}
		fmt.Fprint(g.stderr, "rsync user (printed by turku-agent-ping --restore): ")
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return "", "", fmt.Errorf("read user: %w", err)
		}
		user = strings.TrimSpace(line)
	}
	if user == "" || strings.ContainsAny(user, "@/: \x00") {
		return "", "", fmt.Errorf("rsync user %q: not a user name", user)
	}
	switch {
	case f.passwordFile != "":
		data, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return "", "", fmt.Errorf("--password-file: %w", err)
		}
		pass = strings.TrimRight(string(data), "\r\n")
	case os.Getenv("RSYNC_PASSWORD") != "":
		pass = os.Getenv("RSYNC_PASSWORD")
	case interactive:
		fmt.Fprint(g.stderr, "rsync password (printed by turku-agent-ping --restore): ")
		b, err := term.ReadPassword(stdin)
		fmt.Fprintln(g.stderr)
		if err != nil {
			return "", "", fmt.Errorf("read password: %w", err)
		}
		pass = string(b)
	}
	if pass == "" {
		return "", "", errors.New("no rsync password: use --password-file or RSYNC_PASSWORD, or run on a terminal to be asked")
	}
	if strings.ContainsAny(pass, "\x00\n") {
		return "", "", errors.New("rsync password contains a NUL or newline")
	}
	return user, pass, nil
}
