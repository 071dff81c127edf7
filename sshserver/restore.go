package sshserver

import (
	"errors"
	"log/slog"

	"github.com/turku-backup/turku-storage/sessionlog"
	"github.com/turku-backup/turku-storage/tunnel"
)

// restoreRefused tells the agent why its restore port could not be opened
// and returns the session's exit status. The agent printed instructions
// naming that port, so the session fails rather than listening elsewhere.
func restoreRefused(err error, port uint32, ports tunnel.PortRange, alog *sessionlog.Logger, log *slog.Logger) int {
	switch {
	case errors.Is(err, tunnel.ErrRestorePortOutOfRange):
		log.Warn("restore refused: port out of range", "err", err)
		alog.Errorf("Restore port %d is outside this storage unit's tunnel ports; choose a port from %d to %d", port, ports.Min, ports.Max)
	case errors.Is(err, tunnel.ErrRestorePortTaken):
		log.Warn("restore refused: port in use", "err", err)
		alog.Errorf("Restore port %d is in use on the storage unit; run the restore again to choose another port", port)
	default:
		log.Error("open restore tunnel", "err", err)
		alog.Errorf("Storage unit could not open restore port %d", port)
	}
	return 1
}
