// Package rsync is the one place the storage unit drives the rsync
// client: finding the binary and its version (with the client-side
// security fixes it lacks), building the arguments of a pull (a backup)
// and a push (a restore), running the process (its own process group,
// SIGTERM then SIGKILL when cancelled) and reading its output (--verbose
// file lines, the --stats block, --info=progress2 lines).
//
// backup pulls with it, cmd's restore pushes with it and cmd's version
// and serve's start check report what Find says. It imports nothing of
// ours.
package rsync
