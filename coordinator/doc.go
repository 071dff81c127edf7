// Package coordinator is the embedded coordinator: the subset of turku-api
// that a small site needs to run `turku-storage serve` without a Django
// turku-api. It answers the agent-facing calls (update_config,
// agent_ping_checkin, agent_ping_restore, health) and the storage-facing
// ones (storage_update_config, storage_ping_checkin,
// storage_ping_source_update) with turku-api's JSON, status codes and
// texts, keeps its registry in a SQLite file (Store), assigns every machine
// to the local storage unit, and schedules sources with package schedule.
// Handler is what Server serves on coordinator_listen (with TLS when
// configured, and a graceful shutdown): the agent-facing calls only,
// behind admission control (admission.go, listener.go); InProcessHandler
// adds the storage-facing calls for the storage unit's own in-process
// transport (Transport). Admin operations for the CLI and a Django
// fixture export (to move to a full turku-api later) live on Store.
package coordinator
