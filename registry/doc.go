// Package registry registers this storage unit with the coordinator
// (storage_update_config) and keeps the resulting machine list — the set of
// agent keys that may log in — in an on-disk cache, so the SSH server can
// start and serve agents while the API is unreachable.
package registry
