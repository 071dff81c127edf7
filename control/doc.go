// Package control is serve's local control socket: a registry of what the
// daemon is doing right now (agent sessions, running and waiting backups,
// restore sessions, key refreshes), the Unix-socket server that answers
// `turku-storage status` and `turku-storage restore` from it, and their
// client. It imports nothing of ours: sshserver and backup declare narrow
// observer interfaces, and cmd hands them a *Live.
package control
