package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/internal/logging"
)

// globals are the flags every subcommand shares.
type globals struct {
	configDir string
	logLevel  string
	debug     bool
	stderr    io.Writer
	stdout    io.Writer
	// stdin is where a confirmation is read (orphans purge); nil: none.
	stdin io.Reader
	// onListen, when set (tests), is told the SSH server's and the
	// built-in coordinator's (nil without one) addresses once serve runs.
	onListen func(ssh, coordinator net.Addr)
	// onMetrics, when set (tests), is told the metrics listener's
	// address before onListen.
	onMetrics func(net.Addr)
	// journalSocket, when set (tests), replaces journald's socket.
	journalSocket string
	// onWeb, when set (tests), is told the dashboard's address before
	// onListen.
	onWeb func(net.Addr)
	// signals are the process's signals as main routes them (tests
	// inject their own); the zero value never fires.
	signals daemon.Signals
}

// exitError carries a specific exit status (the old turku-storage-ping
// used several).
type exitError struct {
	code int
	err  error
	// quiet: the command already said everything on stdout (check).
	quiet bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// quietExit reports whether err is an exit status to return without
// printing the error.
func quietExit(err error) bool {
	var ee *exitError
	return errors.As(err, &ee) && ee.quiet
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func newRoot() *cobra.Command {
	return newRootWith(&globals{stderr: os.Stderr, stdout: os.Stdout, stdin: os.Stdin})
}

func newRootWith(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "turku-storage",
		Short: "Turku backup storage unit",
		Long: `turku-storage is the storage unit of the Turku backup system.

Agents on the machines being backed up connect to its embedded SSH server
with a reverse tunnel to their private rsync daemon; the storage unit pulls
each due source through that tunnel into hard-linked snapshots, applies
retention and reports to the coordinator API (turku-api, or the built-in
coordinator when no api_url is configured).

Configuration is read from CONFIG_DIR/config.d/*.json, *.yaml and *.yml,
merged in file-name order; the old Python turku-storage files work unchanged.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.PersistentFlags().StringVarP(&g.configDir, "config-dir", "c", config.DefaultDir, "configuration directory (holds config.d/)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().BoolVar(&g.debug, "debug", false, "shorthand for --log-level=debug")
	root.AddCommand(
		newServeCmd(g),
		newUpdateConfigCmd(g),
		newConfigCmd(g),
		newPingCmd(g),
		newSnapshotsCmd(g),
		newCheckCmd(g),
		newLogsCmd(g),
		newVersionCmd(g),
		newStatusCmd(g),
		newRestoreCmd(g),
		newDocsCmd(g),
		newOrphansCmd(g),
		newSendCmd(g),
		newReceiveCmd(g),
	)
	root.AddCommand(newCoordinatorCmds(g)...)
	return root
}

func (g *globals) level() (slog.Level, error) {
	if g.debug {
		return slog.LevelDebug, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(g.logLevel)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	return l, nil
}

// stderrLogger is for short-lived commands: plain text on stderr.
func (g *globals) stderrLogger() (*slog.Logger, error) {
	l, err := g.level()
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: l})), nil
}

// loadWithLog opens a short-lived command: the stderr logger at the level
// the flags chose, and the configuration, its warnings logged there.
func (g *globals) loadWithLog() (*slog.Logger, *config.Config, error) {
	log, err := g.stderrLogger()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := g.load(log)
	if err != nil {
		return nil, nil, err
	}
	return log, cfg, nil
}

// load reads the configuration and logs its warnings.
func (g *globals) load(log *slog.Logger) (*config.Config, error) {
	return g.loadWith(log, config.Load)
}

func (g *globals) loadWith(log *slog.Logger, load func(dir string) (*config.Config, error)) (*config.Config, error) {
	cfg, err := load(g.configDir)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("invalid configuration in %s:\n  %s", g.configDir, strings.Join(ce.Problems, "\n  "))
		}
		return nil, err
	}
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w)
	}
	// Named by config check; every command repeating them is noise.
	for _, w := range cfg.Ignored {
		log.Debug("config: " + w)
	}
	return cfg, nil
}

// daemonLogger builds the long-running logger from log_file
// (logging.Open) at the level the flags chose. It returns a close
// function.
func (g *globals) daemonLogger(logFile string) (*slog.Logger, func(), error) {
	level, err := g.level()
	if err != nil {
		return nil, nil, err
	}
	return logging.Open(logFile, logging.Options{Level: level, Stderr: g.stderr,
		JournalStream: os.Getenv("JOURNAL_STREAM"), JournalSocket: g.journalSocket})
}
