// Package monitor holds the storage unit's live state: counters, per-source
// last success and attempt, connected agents, running and waiting backups.
// The backup engine and the SSH server report into a *State (it implements
// their Observer interfaces), and two readers share it: the Prometheus
// collector behind /metrics and Status, the view a live-status command
// prints. It imports nothing of ours.
package monitor
