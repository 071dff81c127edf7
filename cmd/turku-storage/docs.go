package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newDocsCmd generates the man pages the package installs. It is hidden:
// packaging/build-deb.sh runs it on the binary it packages.
func newDocsCmd(g *globals) *cobra.Command {
	var date string
	cmd := &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "Write the man pages (section 1) into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hdr := &doc.GenManHeader{Title: "TURKU-STORAGE", Section: "1", Source: "turku-storage " + versionString(), Manual: "Turku backup"}
			if date != "" {
				// A fixed date (the commit's) keeps the pages reproducible.
				t, err := time.Parse(time.RFC3339, date)
				if err != nil {
					return fmt.Errorf("--date: %w", err)
				}
				hdr.Date = &t
			}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			return doc.GenManTree(root, hdr, args[0])
		},
	}
	cmd.Flags().StringVar(&date, "date", "", "date in the pages' footer (RFC 3339), default now")
	return cmd
}
