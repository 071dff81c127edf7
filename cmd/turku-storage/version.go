package main

import (
	"fmt"

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
			rs := rsync.Describe(cmd.Context(), command)
			if asJSON {
				return writeJSON(g, struct {
					buildinfo.Info
					Rsync rsync.Info `json:"rsync"`
				}{b, rs})
			}
			b.WriteText(g.stdout, "turku-storage")
			_, err := fmt.Fprintf(g.stdout, "  rsync:   %s\n", rs)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
