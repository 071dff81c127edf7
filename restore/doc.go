// Package restore decides what `restore` sends: which snapshot a name,
// "latest" or a date means (Pick), and a path inside it that cannot
// leave the snapshot (Subpath). The rsync client is driven by package
// rsync; the agent's restore session is found through control.
package restore
