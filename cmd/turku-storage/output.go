package main

import (
	"encoding/json"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/internal/words"
)

// withConfig is a command's RunE that loads the configuration (its
// warnings logged to stderr) and runs f with the logger and it.
func (g *globals) withConfig(f func(cmd *cobra.Command, log *slog.Logger, cfg *config.Config, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		log, cfg, err := g.loadWithLog()
		if err != nil {
			return err
		}
		return f(cmd, log, cfg, args)
	}
}

// sizeText is a byte count for people (words.Size).
func sizeText(n int64) string { return words.Size(n) }

// dash is s, or "-" for an empty table cell (words.Dash).
func dash(s string) string { return words.Dash(s) }

// writeJSON prints v as indented JSON.
func writeJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printList prints list: as JSON with asJSON, else with table; err, if
// not nil, instead.
func printList(g *globals, list any, err error, asJSON bool, table func() error) error {
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(g, list)
	}
	return table()
}
