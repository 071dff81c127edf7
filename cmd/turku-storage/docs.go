package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/internal/manpages"
)

// newDocsCmd generates the man pages the package installs. It is hidden:
// packaging/build-deb.sh runs it on the binary it packages.
func newDocsCmd(g *globals) *cobra.Command {
	var date, configDoc string
	cmd := &cobra.Command{
		Use:   "gen-man DIR",
		Short: "Write the man pages into DIR",
		Long: `Writes a page per command into DIR: turku-storage(8) and
turku-storage-serve(8) for the daemon, turku-storage-COMMAND(1) for the
others, and with --configuration the turku-storage.conf(5) page made from
that Markdown reference's prose (docs/configuration.md) and the keys as
the configuration's settings table declares them.`,
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := manpages.Date(date, os.Getenv("SOURCE_DATE_EPOCH"), time.Now())
			if err != nil {
				return err
			}
			hdr := manpages.Header{Date: t, Source: "turku-storage " + manpages.Version(versionString())}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			// Debian installs no PowerShell: no page for its completion.
			if ps, _, err := root.Find([]string{"completion", "powershell"}); err == nil && ps.Name() == "powershell" {
				ps.Hidden = true
			}
			if err := manpages.WriteCommands(root, hdr, args[0]); err != nil {
				return err
			}
			if configDoc == "" {
				return nil
			}
			md, err := os.ReadFile(configDoc)
			if err != nil {
				return fmt.Errorf("--configuration: %w", err)
			}
			return os.WriteFile(filepath.Join(args[0], "turku-storage.conf.5"), manpages.Conf(md, hdr), 0o644)
		},
	}
	cmd.Flags().StringVar(&date, "date", "", "date in the pages' header (RFC 3339); default $SOURCE_DATE_EPOCH, else now")
	cmd.Flags().StringVar(&configDoc, "configuration", "", "docs/configuration.md, to write turku-storage.conf(5) from")
	return cmd
}
