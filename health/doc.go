// Package health rates the storage unit as a Nagios plugin does: every
// source against its last success, every machine assigned here, every
// volume against the disk guard, with perfdata. `check` reads the disk
// and prints the result; nothing here writes.
package health
