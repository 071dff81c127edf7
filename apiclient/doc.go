// Package apiclient is the storage unit's client for the Turku coordinator
// API (turku-api, or the built-in coordinator). It owns the JSON shapes of
// the storage-facing calls (docs/protocol.md §3) and maps HTTP failures to
// sentinel errors; it reads no configuration and touches no files.
package apiclient
