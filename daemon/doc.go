// Package daemon is the storage unit's long-running process, turku-storage
// serve: it wires the configuration to the SSH server, the backup engine,
// the key refresh, the report spool, the live state (monitor), the control
// socket, /metrics and the dashboard, routes the process's signals
// (SIGHUP reloads, a second SIGTERM stops at once) and speaks systemd's
// sd_notify. cmd/turku-storage parses serve's flags into Options and calls
// Run; ping and update-config build the same Wiring.
package daemon
