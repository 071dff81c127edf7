// Package restore decides what `restore` sends: which snapshot a name,
// "latest" or a date means (Pick), and a path inside it that cannot
// leave the snapshot (Subpath), and the agent's restore session to send it
// to, asked of serve through control (FindSession, Recheck). The rsync
// client is driven by package rsync.
package restore
