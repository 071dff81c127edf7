package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/restore"
)

// Exit statuses of restore besides 0 and 1 (bad input, anything else).
const (
	exitNoRestoreSession = 3
	exitRsyncAuth        = 4
	exitRsyncFailed      = 5
)

func newRestoreCmd(g *globals) *cobra.Command {
	var o restore.Options
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
		RunE: g.withConfig(func(cmd *cobra.Command, args []string, _ *slog.Logger, cfg *config.Config) error {
			o.Machine, o.Source, o.Snapshot = args[0], args[1], append(args, "")[2]
			return runRestore(cmd.Context(), g, cfg, o)
		}),
	}
	cmd.Flags().StringVar(&o.Path, "path", "", "restore only this path inside the snapshot")
	cmd.Flags().DurationVar(&o.Wait, "wait", 5*time.Minute, "how long to wait for the machine's restore session")
	cmd.Flags().StringVar(&o.User, "user", "", "the rsync user turku-agent-ping --restore printed")
	cmd.Flags().StringVar(&o.PasswordFile, "password-file", "", "read the rsync password from this file (else RSYNC_PASSWORD, else a prompt)")
	cmd.Flags().StringVar(&o.Module, "module", "turku-restore", "the agent's restore module (its restore_module)")
	cmd.Flags().BoolVarP(&o.DryRun, "dry-run", "n", false, "list what would change on the machine; send nothing")
	return cmd
}

// runRestore runs restore.Run with o and cfg and gives its failures
// restore's exit statuses.
func runRestore(ctx context.Context, g *globals, cfg *config.Config, o restore.Options) error {
	o.VarDir, o.Location, o.ControlSocket, o.RsyncCommand = cfg.VarDir, cfg.Location, cfg.ControlSocket, cfg.RsyncCommand
	o.Registered, o.Stdin, o.Stdout, o.Stderr, o.Terminal = daemon.RegisteredMachines(cfg), os.Stdin, g.stdout, g.stderr, isTerminal(g.stderr)
	err := restore.Run(ctx, o)
	var ns *restore.NoSessionError
	var pe *restore.PushError
	switch {
	case errors.As(err, &ns):
		return &exitError{code: exitNoRestoreSession, err: err}
	case errors.As(err, &pe) && pe.Auth:
		return &exitError{code: exitRsyncAuth, err: err}
	case errors.As(err, &pe):
		return &exitError{code: exitRsyncFailed, err: err}
	}
	return err
}
