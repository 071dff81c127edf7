// Package logging builds serve's long-running logger from log_file:
// systemd's journal through its native protocol (priorities and the
// MACHINE, UNIT, SOURCE and SNAPSHOT fields), the local syslog, a file,
// or stderr. cmd picks the level; the rest of the program only sees a
// *slog.Logger.
package logging
