package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/health"
)

func newCheckCmd(g *globals) *cobra.Command {
	var maxAge, warnAge time.Duration
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that every source was backed up recently (Nagios plugin)",
		Long: `Reads the snapshots on disk (VAR_DIR/machines, through the snapshot
index: see snapshots), the backup history (VAR_DIR/history) and the
volumes, and prints one Nagios plugin line with perfdata, then one line
per problem:

  CRITICAL (exit 2)  a source had no successful backup within --max-age of
                     its last success or, if it never succeeded, of its
                     first attempt (named with its last error and the
                     failures in a row), or its last successful backup's
                     snapshot was deleted and none is left; a machine
                     assigned here longer than --max-age ago never backed
                     up at all; a volume
                     is missing, not mounted or read-only; or a volume is
                     filled above its max_usage_pct or has more inodes
                     used than its max_inode_usage_pct (the disk guard: no
                     backup starts there);
  WARNING  (exit 1)  the same past --warn-age, or a machine directory, a
                     volume or the history cannot be read, or an orphan
                     (a machine no longer assigned here, its backups
                     still here: see orphans) is older than
                     orphan_warn_after; orphans are never stale;
  OK       (exit 0)  otherwise (failing sources still within --max-age
                     are counted in the summary and the perfdata);
  UNKNOWN  (exit 3)  the configuration or VAR_DIR/machines cannot be read.

It runs without serve and changes nothing but the snapshot index, so
cron and monitoring systems that do not scrape /metrics can call it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxAge <= 0 || warnAge < 0 || (warnAge > 0 && warnAge >= maxAge) {
				return fmt.Errorf("--max-age must be positive and --warn-age, if set, below it (got %v, %v)", maxAge, warnAge)
			}
			log, err := g.stderrLogger()
			if err != nil {
				return err
			}
			cfg, err := g.load(log)
			if err == nil {
				var r health.Result
				r, err = health.Check(cmd.Context(), health.Options{VarDir: cfg.VarDir, Location: cfg.Location,
					Volumes: backup.VolumeStatus(cfg.VarDir, daemon.BackupVolumes(cfg.Volumes)), SpooledReports: backup.SpooledReports(cfg.VarDir),
					Orphans: backup.OrphanedSince(cfg.VarDir), OrphanWarnAfter: cfg.OrphanWarnAfter,
					MaxAge: maxAge, WarnAge: warnAge, Now: time.Now(), Log: log})
				if err == nil {
					r.Write(g.stdout)
					if r.State == health.OK {
						return nil
					}
					return &exitError{code: r.State, err: errors.New(health.StateNames[r.State]), quiet: true}
				}
			}
			fmt.Fprintf(g.stdout, "TURKU-STORAGE UNKNOWN - %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return &exitError{code: health.Unknown, err: err}
		},
	}
	cmd.Flags().DurationVar(&maxAge, "max-age", 48*time.Hour, "CRITICAL when a source's newest snapshot is older")
	cmd.Flags().DurationVar(&warnAge, "warn-age", 0, "WARNING when a source's newest snapshot is older (0: no warning level)")
	return cmd
}
