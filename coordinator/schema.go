package coordinator

// migrations are applied in order; migrations[i] takes the schema from
// version i to i+1, and schema_version records how many have run. Never edit
// a released migration: append a new one.
//
// Tables and columns mirror turku-api's models (turku_api/models.py) so that
// Export can write a fixture field for field: ids are UUID strings, times
// are INTEGER Unix microseconds (UTC), booleans are 0/1, and list fields
// (filter, exclude, ssh_ping_host_keys) hold the JSON text turku-api stores.
var migrations = []string{
	// 1: the turku-api data model (FilterSet excepted).
	`
CREATE TABLE auths (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	secret_hash TEXT NOT NULL,
	secret_type TEXT NOT NULL CHECK (secret_type IN ('machine_reg', 'storage_reg')),
	comment     TEXT,
	active      INTEGER NOT NULL DEFAULT 1,
	date_added  INTEGER NOT NULL
);
CREATE TABLE storages (
	id                 TEXT PRIMARY KEY,
	name               TEXT NOT NULL UNIQUE,
	secret_hash        TEXT NOT NULL,
	comment            TEXT,
	ssh_ping_host      TEXT NOT NULL,
	ssh_ping_host_keys TEXT NOT NULL DEFAULT '[]',
	ssh_ping_port      INTEGER NOT NULL,
	ssh_ping_user      TEXT NOT NULL,
	space_total        INTEGER NOT NULL DEFAULT 0,
	space_available    INTEGER NOT NULL DEFAULT 0,
	auth_id            TEXT NOT NULL REFERENCES auths(id),
	active             INTEGER NOT NULL DEFAULT 1,
	published          INTEGER NOT NULL DEFAULT 1,
	date_registered    INTEGER NOT NULL,
	date_updated       INTEGER NOT NULL,
	date_checked_in    INTEGER
);
CREATE TABLE machines (
	id               TEXT PRIMARY KEY,
	uuid             TEXT NOT NULL UNIQUE,
	secret_hash      TEXT NOT NULL,
	environment_name TEXT,
	service_name     TEXT,
	unit_name        TEXT NOT NULL,
	comment          TEXT,
	ssh_public_key   TEXT NOT NULL,
	auth_id          TEXT NOT NULL REFERENCES auths(id),
	storage_id       TEXT NOT NULL REFERENCES storages(id),
	active           INTEGER NOT NULL DEFAULT 1,
	published        INTEGER NOT NULL DEFAULT 1,
	date_registered  INTEGER NOT NULL,
	date_updated     INTEGER NOT NULL,
	date_checked_in  INTEGER
);
CREATE TABLE sources (
	id                    TEXT PRIMARY KEY,
	name                  TEXT NOT NULL,
	machine_id            TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
	comment               TEXT,
	path                  TEXT NOT NULL,
	filter                TEXT NOT NULL DEFAULT '[]',
	exclude               TEXT NOT NULL DEFAULT '[]',
	frequency             TEXT NOT NULL DEFAULT 'daily',
	retention             TEXT NOT NULL DEFAULT 'last 5 days, earliest of month',
	bwlimit               TEXT,
	snapshot_mode         TEXT,
	preserve_hard_links   INTEGER NOT NULL DEFAULT 0,
	shared_service        INTEGER NOT NULL DEFAULT 0,
	large_rotating_files  INTEGER NOT NULL DEFAULT 0,
	large_modifying_files INTEGER NOT NULL DEFAULT 0,
	active                INTEGER NOT NULL DEFAULT 1,
	success               INTEGER NOT NULL DEFAULT 1,
	published             INTEGER NOT NULL DEFAULT 1,
	date_added            INTEGER NOT NULL,
	date_updated          INTEGER NOT NULL,
	date_last_backed_up   INTEGER,
	date_next_backup      INTEGER NOT NULL,
	UNIQUE (machine_id, name)
);
CREATE TABLE backup_logs (
	id         TEXT PRIMARY KEY,
	source_id  TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
	date       INTEGER NOT NULL,
	storage_id TEXT REFERENCES storages(id) ON DELETE CASCADE,
	success    INTEGER NOT NULL DEFAULT 0,
	date_begin INTEGER,
	date_end   INTEGER,
	snapshot   TEXT,
	summary    TEXT
);
`,
	// 2: indexes for the hot paths (due sources per machine, logs per
	// source by date, machines per storage unit).
	`
CREATE INDEX sources_machine_due ON sources (machine_id, date_next_backup);
CREATE INDEX backup_logs_source_date ON backup_logs (source_id, date);
CREATE INDEX machines_storage ON machines (storage_id);
`,
}
