package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
)

// notEmbedded is the error of a built-in-coordinator command when api_url
// names turku-api: it says what is not available here, and where it is.
func notEmbedded(cmd *cobra.Command, apiURL string) error {
	if cmd.Name() == "logs" {
		return fmt.Errorf("api_url is set (%s): the backup history is kept by turku-api (its backup logs, e.g. in its admin site), not by this storage unit; this storage unit's own log shows each backup as it ran", apiURL)
	}
	return fmt.Errorf("api_url is set (%s): machines and sources are managed in turku-api, not here", apiURL)
}

// commandLogger is the logger for the packages a short command calls: the
// command prints its own result, so their routine INFO lines ("backup
// scheduled now" before "web1 etc is due now") are left out unless
// --debug or --log-level=debug asks for everything.
func (g *globals) commandLogger(log *slog.Logger) *slog.Logger {
	if l, err := g.level(); err == nil && l <= slog.LevelDebug {
		return log
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
