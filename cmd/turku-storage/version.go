package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/internal/buildinfo"
	"github.com/turku-backup/turku-storage/rsync"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...
// -X main.buildDate=...". Unset, they come from the build info: the module
// version (go install pkg@version) and the VCS stamp (vcs.revision,
// vcs.time, vcs.modified) that go build records in a checkout.
var (
	version   = ""
	commit    = ""
	buildDate = ""
)

// versionString is the short version: the release, or devel-COMMIT.
func versionString() string { return buildinfo.Read(version, commit, buildDate).Short() }

// rsyncInfo is the rsync binary serve would run.
type rsyncInfo struct {
	Command  string `json:"command"`
	Path     string `json:"path,omitempty"`
	Version  string `json:"version,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Error    string `json:"error,omitempty"`
}

// findRsync asks the rsync package for the binary and its version.
func findRsync(ctx context.Context, command string) rsyncInfo {
	b, err := rsync.Find(ctx, command)
	r := rsyncInfo{Command: command, Path: b.Path}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Version = b.Version.String()
	if b.Protocol > 0 {
		r.Protocol = strconv.Itoa(b.Protocol)
	}
	return r
}

func newVersionCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, build and the rsync found",
		Long: `Prints the version, the commit and build date it was built from, the Go
version, and the rsync binary serve would run (rsync_command from the
configuration when it loads, else "rsync" on PATH) with its version.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			command := "rsync"
			// The configuration is optional here: version must work on a
			// fresh install.
			if cfg, err := config.Load(g.configDir); err == nil {
				command = cfg.RsyncCommand
			}
			b := buildinfo.Read(version, commit, buildDate)
			b.Version = b.Short()
			rs := findRsync(cmd.Context(), command)
			if asJSON {
				return writeJSON(g, struct {
					buildinfo.Info
					Rsync rsyncInfo `json:"rsync"`
				}{b, rs})
			}
			fmt.Fprintf(g.stdout, "turku-storage %s\n", b.Version)
			commit := dash(b.Commit)
			if b.Modified {
				commit += " (modified)"
			}
			fmt.Fprintf(g.stdout, "  commit:  %s\n  built:   %s\n  go:      %s %s\n", commit, dash(b.BuildDate), b.GoVersion, b.Platform)
			if rs.Error != "" {
				fmt.Fprintf(g.stdout, "  rsync:   %s: %s\n", rs.Command, rs.Error)
			} else {
				fmt.Fprintf(g.stdout, "  rsync:   %s, version %s, protocol %s\n", rs.Path, rs.Version, rs.Protocol)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
