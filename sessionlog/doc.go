// Package sessionlog writes the log lines a Turku agent sees on its SSH
// session, in the old storage unit's format
// ("[2026-11-25 03:15:00,123 primary] INFO: Begin: web1 etc") and with its
// verbosity rule: ERROR only, or INFO and above when the agent asked for
// verbose output.
package sessionlog
