// Package web is serve's read-only dashboard: an overview of every machine
// and source (age coloured by the staleness rule check uses, failures,
// snapshots and sizes, the backups running now, the volumes, key refresh
// and report spool), a page per machine with its snapshots, attempts and
// plots, and the JSON behind each page. It reads the live monitor state,
// the snapshots on disk (backup) and the attempt history (history); it
// keeps nothing of its own but a cache of what the disk said, and no
// request changes anything.
package web
