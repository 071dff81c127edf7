// Package control is serve's local control socket: the Unix-socket server
// that answers `turku-storage status` and `turku-storage restore` from the
// live state (a *monitor.State, which the SSH server and the backup engine
// report into), and their client. Of ours it imports only monitor, for the
// state's types; it holds no state of its own.
package control
