package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/config"
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
		RunE: g.withConfig(func(cmd *cobra.Command, args []string, _ *slog.Logger, cfg *config.Config) error {
			return runRestore(cmd.Context(), g, cfg, f, append(args, "")[:3])
		}),
	}
	cmd.Flags().StringVar(&f.path, "path", "", "restore only this path inside the snapshot")
	cmd.Flags().DurationVar(&f.wait, "wait", 5*time.Minute, "how long to wait for the machine's restore session")
	cmd.Flags().StringVar(&f.user, "user", "", "the rsync user turku-agent-ping --restore printed")
	cmd.Flags().StringVar(&f.passwordFile, "password-file", "", "read the rsync password from this file (else RSYNC_PASSWORD, else a prompt)")
	cmd.Flags().StringVar(&f.module, "module", "turku-restore", "the agent's restore module (its restore_module)")
	cmd.Flags().BoolVarP(&f.dryRun, "dry-run", "n", false, "list what would change on the machine; send nothing")
	return cmd
}

// runRestore runs restore.Run for args (MACHINE SOURCE SNAPSHOT) and
// gives its failures restore's exit statuses.
func runRestore(ctx context.Context, g *globals, cfg *config.Config, f restoreFlags, args []string) error {
	err := restore.Run(ctx, restore.Options{
		Machine: args[0], Source: args[1], Snapshot: args[2], Path: f.path, Module: f.module, DryRun: f.dryRun, Wait: f.wait,
		VarDir: cfg.VarDir, Location: cfg.Location, ControlSocket: cfg.ControlSocket, RsyncCommand: cfg.RsyncCommand,
		Registered: registeredMachines(cfg),
		Credentials: func() (string, string, error) {
			return restore.Credentials(f.user, f.passwordFile, os.Stdin, g.stderr)
		},
		Stdout: g.stdout, Stderr: g.stderr, Terminal: isTerminal(g.stderr),
	})
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
