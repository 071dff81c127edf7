package control

import (
	"errors"
	"os"
	"strings"
	"time"
)

// Status is the document `turku-storage status --json` prints.
type Status struct {
	Version string    `json:"version"`
	Now     time.Time `json:"now"`
	Started time.Time `json:"started"`
	// Agents are the connected agents with a running session.
	Agents []Agent `json:"agents"`
	// Backups are the sources whose rsync runs now.
	Backups []Backup `json:"backups"`
	// Waiting are the sources waiting for a max_concurrent_backups slot.
	Waiting []Backup `json:"waiting"`
	// MaxConcurrentBackups is the configured number of slots.
	MaxConcurrentBackups int `json:"max_concurrent_backups"`
	// Restores are the agents in restore mode, with their ports.
	Restores []Agent `json:"restores"`
	Keys     Keys    `json:"keys"`
	// SpooledReports counts the reports waiting in VAR_DIR/reports for
	// the API; -1 if the directory cannot be read.
	SpooledReports int      `json:"spooled_reports"`
	Volumes        []Volume `json:"volumes"`
}

// Volume is one configured volume and its filesystem's space.
type Volume struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	AcceptNew bool   `json:"accept_new"`
	// HighWaterPct is accept_new_high_water_pct for this volume.
	HighWaterPct int   `json:"accept_new_high_water_pct"`
	SizeBytes    int64 `json:"size_bytes"`
	// FreeBytes is what an unprivileged user may still write (statfs
	// f_bavail), the figure placement uses.
	FreeBytes int64   `json:"free_bytes"`
	UsedPct   float64 `json:"used_pct"`
	// Error is set when the volume could not be examined.
	Error string `json:"error,omitempty"`
}

// countSpooled counts the spooled report files (NNN-HEX.json) in dir.
func countSpooled(dir string) int {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".json") {
			n++
		}
	}
	return n
}
