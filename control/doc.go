// Package control is serve's local control socket: the Unix-socket server
// that answers `turku-storage status` and `turku-storage restore` from the
// live state (a *monitor.State, which the SSH server and the backup engine
// report into), and their client, with the tables `status` prints
// (Status.WriteText). Of ours it imports monitor, for the state's types,
// and internal/words; it holds no state of its own.
package control
