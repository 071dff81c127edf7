// Package monitor holds the storage unit's one live state: counters,
// per-source last success and attempt, connected agents with their ports,
// running and waiting backups with their bytes and files, where the keys
// came from. The backup engine and the SSH server report into a *State (it
// implements their Observer interfaces), and three readers share it: the
// Prometheus collector behind /metrics, systemd's STATUS= line, and the
// control socket behind `status` and `restore` (Status, RestoreSession).
// It imports nothing of ours.
package monitor
