package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/agentproto"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/sessionlog"
)

func newPingCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ping MACHINE_UUID",
		Short: "Serve one agent session over stdin/stderr (OpenSSH forced-command mode)",
		Long: `For sites that keep OpenSSH in front of the storage unit: use as the
forced command of each agent key in authorized_keys, exactly like the old
turku-storage-ping:

  no-pty,no-agent-forwarding,no-X11-forwarding,no-user-rc,command="turku-storage ping UUID" ssh-ed25519 AAAA...

Reads the agent's JSON request from stdin up to the "." line. For a checkin,
OpenSSH has bound the agent's reverse forward on 127.0.0.1:PORT, and rsync
pulls through it; log lines for the agent go to stderr in the old format.
For a restore, it announces the port and waits until the agent closes the
session. Exit status 0 when every due source was backed up, 1 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPing(cmd.Context(), g, args[0], cmd.InOrStdin())
		},
	}
}

func runPing(ctx context.Context, g *globals, uuid string, stdin io.Reader) error {
	boot, err := g.stderrLogger()
	if err != nil {
		return err
	}
	// sshd serves the host keys here, not us.
	cfg, err := g.loadWith(slog.New(slog.DiscardHandler), config.LoadBehindOpenSSH)
	if err != nil {
		boot.Error("invalid configuration", "err", err)
		return err
	}
	// stderr belongs to the agent: internals go to syslog unless log_file
	// says otherwise, as with the old turku-storage-ping.
	logFile := cfg.LogFile
	if logFile == "" {
		logFile = "syslog"
	}
	log, closeLog, err := g.daemonLogger(logFile)
	if err != nil {
		log, closeLog = slog.New(slog.DiscardHandler), func() {}
	}
	defer closeLog()
	log = log.With("machine", uuid)

	br := bufio.NewReader(stdin)
	req, err := agentproto.Read(br)
	if err != nil {
		sessionlog.New(g.stderr, cfg.Name, false, nil).Errorf("%v", err)
		log.Warn("bad agent request", "err", err)
		return &exitError{code: 1, err: err}
	}
	// alog writes the lines the agent sees.
	alog := sessionlog.New(g.stderr, cfg.Name, req.Verbose, nil)
	if req.Action == agentproto.ActionRestore {
		alog.RestoreActive(req.Port)
		_, _ = io.Copy(io.Discard, br)
		alog.RestoreFinished()
		return nil
	}
	w, err := daemon.NewWiring(cfg, log, versionString())
	if err != nil {
		alog.Errorf("%v", err)
		return &exitError{code: 1, err: err}
	}
	defer w.Close()
	engine, err := w.PullEngine()
	if err != nil {
		alog.Errorf("%v", err)
		return &exitError{code: 1, err: err}
	}
	err = engine.Pull(ctx, backup.Request{
		Machine:     uuid,
		Credentials: req.Sources,
		RsyncAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(req.Port)),
		Log:         alog,
	})
	// This process is the agent's session, and its end would stop the
	// background deliveries: the reports are waited for here (each
	// already spooled; those a signal cuts short are resent by serve).
	if werr := w.WaitReports(ctx); werr != nil {
		log.Warn("reports not yet answered; left spooled", "err", werr)
	}
	if err != nil {
		log.Warn("session failed", "err", err)
		return &exitError{code: 1, err: errors.New("backup failed; see the log lines above")}
	}
	return nil
}
