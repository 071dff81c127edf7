// Package backup is the storage unit's backup engine: for one agent
// checkin it asks the coordinator which sources are due, pulls each with
// rsync through the agent's tunnel into a working tree, turns it into a
// dated snapshot, applies the source's retention and reports the outcome
// (docs/protocol.md §5.3, §6, §7).
//
// It owns the on-disk layout under VAR_DIR and the volumes: machine
// placement, snapshot directories and their .json files, the per-machine
// lock and the spool of undeliverable reports. cmd wires an *Engine into
// the SSH server, which only sees it through a small Puller interface.
package backup
