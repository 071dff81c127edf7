package control

import (
	"time"

	"github.com/turku-backup/turku-storage/monitor"
)

// Status is the document `turku-storage status --json` prints: the live
// state as the monitor models it, and what only serve knows.
type Status struct {
	// Storage is the name of the storage unit that answered.
	Storage string    `json:"storage"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	// MaxConcurrentBackups is the configured number of slots.
	MaxConcurrentBackups int `json:"max_concurrent_backups"`
	// Published is the configuration's published in force, as the key
	// refresh sends it to turku-api; absent when the key is not set
	// (turku-api then takes the unit as published). false: the unit is
	// draining, turku-api places no new machine on it.
	Published *bool `json:"published,omitempty"`
	monitor.Status
}
