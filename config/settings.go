package config

//go:generate go test -run TestConfigurationReference -update .

// setting declares one key of config.d: the one place its name, its
// field, its default, whether a reload applies it and its line in
// docs/configuration.md are written. From this table come the known keys
// (keys.go), the environment variables (load.go), the defaults, the typed
// reading (read.go), RestartNeeded, what `config check` prints, the
// reference's key tables and turku-storage.conf(5). build keeps what
// needs code: validation across keys and derived defaults.
//
// A new key: its field in Config (or Volume), its entry in settings (or
// volumeSettings) below, and `go generate ./config` to rewrite the tables
// of docs/configuration.md. TestSettingsDeclared and
// TestConfigurationReference say what is missing, with the entry to add.
type setting struct {
	key string
	// field points into a Config at the key's value; nil for a key read
	// into another's field (ssh_ping_host_keys_glob) or ignored.
	field func(*Config) any
	// def is the default as config.d spells it ("4", "5m", "false"); ""
	// for none. docDef is what the reference says instead, when the
	// default is derived, required or absent.
	def, docDef string
	// min and max bound an integer.
	min, max int64
	// required: the key must be set (and not empty).
	required bool
	// restart: the setting is bound at start; a reload keeps the running
	// value and names the key (RestartNeeded).
	restart bool
	// secret: masked in `config check`, and the words a secret must not
	// be are refused (placeholder.go).
	secret bool
	// hint says what to put in place of a placeholder.
	hint string
	// old: the Python storage unit read it too (the reference's first
	// table).
	old bool
	// ignored: accepted and not used, for this reason.
	ignored string
	// custom: read in build (a mapping, a type with no reader in
	// read.go, or a key without a field of its own).
	custom bool
	// doc is the reference's "meaning" cell, Markdown. Keys in a row
	// with the same doc, defaults and reload class are documented as one
	// row.
	doc string
}

// settings are the top-level keys, in the order `config check` prints
// and the reference lists them.
var settings = []setting{
	{key: "name", field: func(c *Config) any { return &c.Name }, required: true, docDef: "required", restart: true, old: true,
		doc: "short name of this storage unit, as registered in turku-api"},
	{key: "secret", field: func(c *Config) any { return &c.Secret }, required: true, docDef: "required", restart: true, old: true,
		secret: true, hint: "make one with: openssl rand -hex 32",
		doc: "this storage unit's secret for turku-api"},
	{key: "api_url", field: func(c *Config) any { return &c.APIURL }, restart: true, old: true,
		hint: "set turku-api's URL, or remove the line to run the built-in coordinator",
		doc:  "turku-api base URL, e.g. `https://turku.example.com/v1`. **Absent: `serve` runs the built-in coordinator**. Plain `http://` to a loopback address (turku-api on the same host) is warned about at start: while the API is down, a local process that takes its port receives the storage secret with the next call"},
	{key: "api_auth", field: func(c *Config) any { return &c.APIAuth }, old: true,
		secret: true, hint: "set the registration string turku-api's administrator gave",
		doc: "legacy registration string, sent as the string value of `auth` (older APIs)"},
	{key: "api_auth_name", field: func(c *Config) any { return &c.APIAuthName }, old: true,
		doc: "registration auth sent as `{\"name\", \"secret\"}` on first registration (current API); go together"},
	{key: "api_auth_secret", field: func(c *Config) any { return &c.APIAuthSecret }, old: true,
		secret: true, hint: "set the registration secret turku-api's administrator gave",
		doc: "registration auth sent as `{\"name\", \"secret\"}` on first registration (current API); go together"},
	{key: "api_ca_file", field: func(c *Config) any { return &c.APICAFile }, docDef: "system roots", restart: true,
		doc: "PEM bundle trusted for the API's TLS certificate (verification is always on)"},
	{key: "api_timeout", field: func(c *Config) any { return &c.APITimeout }, def: "30s", restart: true,
		doc: "bound on each API call; a report is not given up at this bound but waited for (up to 10 minutes), since an unanswered report may have been processed (see operations.md, Reports)"},
	{key: "published", field: func(c *Config) any { return &c.Published }, docDef: "not sent", old: true,
		doc: "whether turku-api should offer this storage unit for new machines. `false` drains the unit: no new machines are placed on it, those already there keep backing up. turku-api reads a call without the key as `true`, so keep `false` set for as long as the unit drains (operations.md, \"Several storage units\")"},
	{key: "log_file", field: func(c *Config) any { return &c.LogFile }, docDef: "the journal under systemd, else stderr", restart: true, old: true,
		doc: "`systemd` (journald's native protocol: priorities and the `MACHINE=`, `UNIT=`, `SOURCE=`, `SNAPSHOT=` fields), `syslog`, or an absolute file path (appended). Unset, `serve` uses the journal's native protocol when its standard error is the journal stream systemd connected (`JOURNAL_STREAM`), else writes plain lines to standard error"},
	{key: "lock_dir", field: func(c *Config) any { return &c.LockDir }, docDef: "`VAR_DIR/lock` (created 0700)", old: true,
		doc: "where `turku-storage-ping-UUID.lock` files live; set `/run/lock` only while the old code runs on the same host, to share its locks (see operations.md, \"Local security\"; the packaged unit needs a `ReadWritePaths=/run/lock` drop-in for it). An existing directory that other users may write to without the sticky bit (mode `0777`, `0770`, …), or that is owned by a user other than root or serve's own, is refused by `config check` and `serve`; `1777` owned by root (`/run/lock`) is allowed with a warning at start"},
	// The report queue and the key cache keep the directory they
	// started with.
	{key: "var_dir", field: func(c *Config) any { return &c.VarDir }, def: "/var/lib/turku-storage", restart: true, old: true,
		doc: "state: `machines/` links, machine key cache, host key, report spool; made 0700 at start. One `serve` per `var_dir`: it holds `VAR_DIR/serve.lock` (its pid inside), and a second one is refused at start, naming the var_dir and that pid"},
	{key: "snapshot_mode", field: func(c *Config) any { return &c.SnapshotMode }, def: "link-dest", old: true,
		doc: "`link-dest` (hard-linked snapshots) or `none` (one in-place copy)"},
	{key: "preserve_hard_links", field: func(c *Config) any { return &c.PreserveHardLinks }, def: "false", old: true,
		doc: "pass `--hard-links` to rsync for every source"},
	{key: "timezone", field: func(c *Config) any { return &c.Timezone }, def: "UTC", old: true,
		doc: "zone for snapshot names and retention day boundaries"},
	{key: "accept_new_high_water_pct", field: func(c *Config) any { return &c.AcceptNewHighWaterPct }, def: "80", min: 0, max: 100, old: true,
		doc: "every volume's `accept_new_high_water_pct` unless it sets its own; 0..100"},
	{key: "volumes", field: func(c *Config) any { return &c.Volumes }, required: true, docDef: "required", old: true, custom: true,
		doc: "mapping of volume name (case kept) to its settings (below); at least one"},
	{key: "max_usage_pct", field: func(c *Config) any { return &c.MaxUsagePct }, def: "95", min: 1, max: 100,
		doc: "the disk guard (like BackupPC's `DfMaxUsagePct`): above this used % of a volume's filesystem (as `df` shows it: used / (used + available), so blocks reserved for root do not count as used) no backup starts there — the source fails at once with a summary naming the volume and its fill, nothing is written or deleted. Default for every volume; 1..100"},
	{key: "max_inode_usage_pct", field: func(c *Config) any { return &c.MaxInodeUsagePct }, def: "95", min: 1, max: 100,
		doc: "the disk guard for inodes (like BackupPC's `DfMaxInodeUsagePct`): above this % of a volume's inodes used (`df -i`'s `IUse%`) no backup starts there, and no new machine is placed there. Hard-linked snapshots use inodes faster than blocks. Default for every volume; 1..100. A filesystem that reports no inode count (btrfs) is not held to it"},
	{key: "metrics_listen", field: func(c *Config) any { return &c.MetricsListen }, docDef: "none (off)", restart: true,
		doc: "address of the Prometheus `/metrics` endpoint, e.g. `127.0.0.1:9410`; keep it on loopback or a management network (see operations.md, \"Monitoring\")"},
	{key: "ssh_ping_host", field: func(c *Config) any { return &c.SSHPingHost }, docDef: "this host's name", old: true,
		hint: "set the name agents connect to this host by",
		doc:  "host name advertised to agents"},
	{key: "ssh_ping_port", field: func(c *Config) any { return &c.SSHPingPort }, def: "22", min: 1, max: 65535, old: true,
		doc: "port advertised to agents; also the default listen port"},
	{key: "ssh_ping_user", field: func(c *Config) any { return &c.SSHPingUser }, def: "root", restart: true, old: true,
		doc: "user name advertised to agents; the SSH server accepts only this name"},
	{key: "ssh_ping_host_keys", field: func(c *Config) any { return &c.SSHPingHostKeys }, docDef: "public halves of `ssh_host_key_files`", restart: true, old: true,
		doc: "host keys advertised to agents (authorized_keys form). Without `ssh_host_key_files`, their private halves are looked for among `/etc/ssh/ssh_host_*_key` and served. Must be the keys served: otherwise `config check` and `serve` fail (see docs/operations.md, migration)"},
	// Read into SSHPingHostKeys in build, which a reload does not change.
	{key: "ssh_ping_host_keys_glob", restart: true, old: true, custom: true,
		doc: "read the advertised keys from these files instead (old behaviour, e.g. `/etc/ssh/ssh_host_*_key.pub`). Without `ssh_host_key_files`, the private halves beside them (`FILE` for `FILE.pub`) are served, keeping the old sshd's identity; must be readable by the user `serve` runs as"},
	{key: "ssh_listen", field: func(c *Config) any { return &c.SSHListen }, docDef: "`:<ssh_ping_port>`", restart: true,
		doc: "address of the embedded SSH server, `HOST:PORT` with a port number"},
	{key: "ssh_host_key_files", field: func(c *Config) any { return &c.SSHHostKeyFiles }, docDef: "`<var_dir>/ssh_host_ed25519_key`, or the private halves of the advertised keys", restart: true,
		doc: "private host keys (OpenSSH format, not readable by others); generated (0600) when missing, reused afterwards. The advertised keys are exactly their public halves"},
	{key: "update_config_interval", field: func(c *Config) any { return &c.UpdateConfigInterval }, def: "5m", restart: true,
		doc: "how often `serve` refreshes the machine keys from the API (plus up to 10% jitter); a Go duration or seconds"},
	{key: "max_concurrent_backups", field: func(c *Config) any { return &c.MaxConcurrentBackups }, def: "4", min: 1, max: 1024,
		doc: "rsync pulls running at once across all agents; others wait and say so in the agent's log. A reload changes the bound for pulls not yet started; pulls started before and after it count together. 1..1024"},
	{key: "rsync_command", field: func(c *Config) any { return &c.RsyncCommand }, def: "rsync",
		doc: "the rsync binary; `serve` warns at start if its `--version` predates 3.5.0 (operations.md, \"Local security\"). A wrapper must end in `exec rsync \"$@\"` (the checkin tunnel admits only a connection made by a direct child of serve)"},
	// Derived in build: the instance's runtime directory, or var_dir.
	{key: "control_socket", field: func(c *Config) any { return &c.ControlSocket }, restart: true,
		docDef: "`$RUNTIME_DIRECTORY/control.sock` under systemd, else `VAR_DIR/control.sock`",
		doc:    "Unix socket (mode 0600; its directory is created 0700 when missing) on which `serve` answers `status` and `restore`; only root and serve's own user are answered. An absolute path of at most 107 bytes; a stale socket is replaced, anything else at the path is an error. The default is the instance's own, so several storage units on one host (each with its config dir and `var_dir`) never share one: when systemd sets `RUNTIME_DIRECTORY` (the unit's `RuntimeDirectory=`; the packaged unit's is `/run/turku-storage`), the socket goes there and `serve` links `VAR_DIR/control.sock` to it, so `status` and `restore` run from a shell (where `RUNTIME_DIRECTORY` is not set) find it through `var_dir`; otherwise it is `VAR_DIR/control.sock` itself. Versions before this one defaulted to `/run/turku-storage/control.sock` whatever the instance"},
	{key: "coordinator_listen", field: func(c *Config) any { return &c.CoordinatorListen }, def: "127.0.0.1:8410", restart: true,
		doc: "built-in coordinator address (only without `api_url`)"},
	{key: "coordinator_tls_cert", field: func(c *Config) any { return &c.CoordinatorTLSCert }, restart: true,
		doc: "serve the built-in coordinator over HTTPS; go together"},
	{key: "coordinator_tls_key", field: func(c *Config) any { return &c.CoordinatorTLSKey }, restart: true,
		doc: "serve the built-in coordinator over HTTPS; go together"},
	{key: "coordinator_insecure_listen", field: func(c *Config) any { return &c.CoordinatorInsecureListen }, def: "false", restart: true,
		doc: "allow `coordinator_listen` on an address other than loopback (`127.0.0.0/8`, `::1`, `localhost`) without TLS; without it such a configuration is refused by `config check` and `serve`, since agents send their secrets in every request"},
	{key: "machine_registration_secret", field: func(c *Config) any { return &c.MachineRegistrationSecret }, restart: true,
		secret: true, hint: "make one with: openssl rand -hex 32",
		doc: "machine registration secret for the built-in coordinator"},
	// The SSH server's admission and session limits are set when it
	// starts (sshlimits.go; operations.md, "Facing the internet").
	{key: "ssh_max_startups", field: func(c *Config) any { return &c.SSHMaxStartups }, def: "30:30:100", restart: true,
		doc: "sshd's `MaxStartups` start:rate:full for unauthenticated connections: from *start* on, a new connection from an address that has not authenticated in the last 24 h waits up to 5 s for a slot below *start* (first come first served, at most *full*−*start* waiting); one that finds that many waiting is dropped with probability *rate*% rising to 100% at three quarters of *full*; the last quarter is kept for addresses that have; nothing beyond *full*. A single number is a hard limit. See operations.md, \"Facing the internet\""},
	{key: "ssh_per_source_max_startups", field: func(c *Config) any { return &c.SSHPerSourceMaxStartups }, def: "10", min: 1, max: 100000, restart: true,
		doc: "unauthenticated connections one IPv4 address or IPv6 /64 may hold (sshd `PerSourceMaxStartups`, `PerSourceNetBlockSize 32:64`)"},
	// An agent needs one connection and one session (a checkin and a
	// restore of one machine may overlap): a few more leave room for a run
	// starting while the last one's connection closes, and none for one
	// key to take the slots every other machine needs.
	{key: "ssh_max_connections_per_machine", field: func(c *Config) any { return &c.SSHMaxConnectionsPerMachine }, def: "4", min: 1, max: 1000, restart: true,
		doc: "authenticated connections one machine's key may hold at once (an agent needs one); a further one is refused at authentication, the agent's ssh prints `Too many connections for this machine on this storage unit` before `Permission denied`, and its address earns the 1 s \"nothing tried\" penalty. 1..1000"},
	{key: "ssh_max_sessions_per_machine", field: func(c *Config) any { return &c.SSHMaxSessionsPerMachine }, def: "2", min: 1, max: 1000, restart: true,
		doc: "sessions one machine may run at once (a checkin and a restore), counted before a session takes one of the unit's 100; at most `ssh_max_connections_per_machine`. 1..1000"},
	// The agent sends its command and request at once.
	{key: "ssh_session_request_timeout", field: func(c *Config) any { return &c.SSHSessionRequestTimeout }, def: "5s", restart: true,
		doc: "a session must send its command and the agent's request within this, else it ends (`Session ended: no request within the session request time`) and its slot is free. 1s..30s (the 30 s login grace time bounds the same wait from the connection's start)"},
	{key: "ssh_trusted_networks", field: func(c *Config) any { return &c.SSHTrustedNetworks }, restart: true,
		doc: "list of networks (`192.0.2.0/24`, `2001:db8::/48`; a bare address is one host) never penalised nor held to the per-source limit: the operator's own, or many agents behind one NAT address"},
	{key: "restore_max_lifetime", field: func(c *Config) any { return &c.RestoreMaxLifetime }, def: "3h", restart: true,
		doc: "a restore session ends after this long, telling the agent why"},
	// turku-agent picks its port with random.randint(49152, 65535).
	// tunnel.go; operations.md, "Facing the internet", for why it is
	// closed.
	{key: "tunnel_port_range", field: func(c *Config) any { return &c.TunnelPortRange }, def: "49152-65535", restart: true,
		doc: "`MIN-MAX`, the agent ports a reverse forward (`ssh -R PORT:…`) may name, and so the ports a restore listens on for real; others are refused and logged (`reverse forward refused: port out of range`). turku-agent picks its port in 49152–65535; below it are the storage unit's own services (Redis on 6379, turku-api on 8000) whose clients would reach an agent if a restore held their port while they are down. `1024 <= MIN <= MAX <= 65535`"},
	// The report queue is built once, with its limits.
	{key: "report_spool_max_count", field: func(c *Config) any { return &c.ReportSpoolMaxCount }, def: "10000", min: 1, max: 1 << 30, restart: true,
		doc: "the report spool (`VAR_DIR/reports`, reports waiting for the API) holds at most this many reports; beyond it the oldest are dropped, each logged at ERROR (operations.md, \"Facing the internet\", Report spool). 1 or more"},
	{key: "report_spool_max_bytes", field: func(c *Config) any { return &c.ReportSpoolMaxBytes }, def: "268435456", docDef: "`268435456` (256 MiB)", min: 1 << 20, max: 1 << 40, restart: true,
		doc: "the same cap in bytes; at least 1 MiB"},
	// The read-only dashboard (web.go; operations.md, "Dashboard"). Its
	// listener, TLS pair, password file and age thresholds are read when
	// it starts.
	{key: "web_listen", field: func(c *Config) any { return &c.WebListen }, docDef: "none (off)", restart: true,
		doc: "address of the read-only dashboard (operations.md, \"Dashboard\"), e.g. `127.0.0.1:8411`. An address other than loopback (`127.0.0.0/8`, `::1`, `localhost`) is refused unless `web_tls_cert` or `web_auth_file` is set"},
	{key: "web_tls_cert", field: func(c *Config) any { return &c.WebTLSCert }, restart: true,
		doc: "serve the dashboard over HTTPS (PEM; absolute paths; must load as a pair); go together"},
	{key: "web_tls_key", field: func(c *Config) any { return &c.WebTLSKey }, restart: true,
		doc: "serve the dashboard over HTTPS (PEM; absolute paths; must load as a pair); go together"},
	{key: "web_auth_file", field: func(c *Config) any { return &c.WebAuthFile }, restart: true,
		doc: "every dashboard request needs HTTP basic authentication against this file: `user:bcrypt-hash` lines as `htpasswd -B` writes them, `#` comments; an absolute path; any other hash format, a user listed twice or no user at all is refused"},
	// check --max-age's default.
	{key: "web_max_age", field: func(c *Config) any { return &c.WebMaxAge }, def: "48h", restart: true,
		doc: "the dashboard marks a source STALE when its last success (or, never successful, its first attempt) is older: give it the `--max-age` your `turku-storage check` runs with"},
	// No default: unset, there is no warning level, as without check
	// --warn-age.
	{key: "web_warn_age", field: func(c *Config) any { return &c.WebWarnAge }, restart: true,
		doc: "the dashboard marks a source OLD past this age; below `web_max_age`; like `check --warn-age`"},
	// Orphans: machines with data here that turku-api no longer assigns
	// to this unit (orphans.go; operations.md, "Several storage units").
	// Read in build, for they also take whole days ("14d"). The default
	// is long enough to finish a move and check the new unit's first
	// backups, short enough that a forgotten orphan is seen.
	{key: "orphan_warn_after", field: func(c *Config) any { return &c.OrphanWarnAfter }, def: "14d", custom: true,
		doc: "an orphan — a machine with data here that turku-api no longer assigns to this unit (moved to another unit, or deactivated) — turns `check` WARNING, and `turku_storage_orphaned_machine_since_timestamp_seconds` the `TurkuOrphanedMachine` alert, once it has been one this long, so it gets purged (`turku-storage orphans purge`). Orphans are never counted as stale sources. Whole days (`14d`) or a duration (`336h`)"},
	// No default: nothing is deleted unless asked.
	{key: "orphan_expiry", field: func(c *Config) any { return &c.OrphanExpiry }, docDef: "none (off)", custom: true,
		doc: "when set, `serve` deletes (`orphans purge`) each orphan that has been one longer than this, after a key refresh, logging each. It purges nothing (and says so) while no machine is assigned here or more than half of the machines here are orphans: a renamed unit or a coordinator that lost its machines looks like that. At least a day; whole days (`90d`) or a duration. Off by default: without it nothing is ever deleted automatically"},
	// The old storage unit generated authorized_keys with these; the
	// embedded SSH server makes them meaningless.
	noAuthorizedKeys("authorized_keys_file"),
	noAuthorizedKeys("authorized_keys_user"),
	noAuthorizedKeys("authorized_keys_command"),
}

// noAuthorizedKeys declares a key the old storage unit generated
// authorized_keys with: accepted and named as ignored.
func noAuthorizedKeys(key string) setting {
	const why = "the embedded SSH server needs no authorized_keys"
	return setting{key: key, old: true, ignored: why,
		doc: "accepted and named as ignored (`config check`, and INFO at start): " + why}
}

// volumeSetting declares one key of a volume (volumes.NAME.KEY), like
// setting does a top-level one. A reload applies every volume setting.
type volumeSetting struct {
	key   string
	field func(*Volume) any
	// def is the default as config.d spells it; from names the top-level
	// key whose value is the default instead.
	def, from string
	min, max  int64
	required  bool
	doc       string
}

// volumeSettings are the keys of one volume, in the order `config check`
// prints them.
var volumeSettings = []volumeSetting{
	{key: "path", field: func(v *Volume) any { return &v.Path }, required: true,
		doc: "the volume's directory, an absolute path"},
	{key: "accept_new", field: func(v *Volume) any { return &v.AcceptNew }, def: "true",
		doc: "whether new machines may be placed here"},
	{key: "accept_new_high_water_pct", field: func(v *Volume) any { return &v.HighWaterPct }, from: "accept_new_high_water_pct", min: 0, max: 100,
		doc: "above this used %, no new machines. `accept_new_high_water_pct` only decides where *new* machines go"},
	{key: "max_usage_pct", field: func(v *Volume) any { return &v.MaxUsagePct }, from: "max_usage_pct", min: 1, max: 100,
		doc: "the disk guard for this volume (new in this implementation)"},
	{key: "max_inode_usage_pct", field: func(v *Volume) any { return &v.MaxInodeUsagePct }, from: "max_inode_usage_pct", min: 1, max: 100,
		doc: "the inode guard for this volume (new in this implementation)"},
}

// notSettings are the Config fields no key sets directly: where the
// configuration came from, and what build derives or finds.
var notSettings = []string{"Dir", "Files", "Location", "ControlSocketLink", "Warnings", "Ignored", "Origins"}

// lookup returns the top-level setting named key.
func lookup(key string) (setting, bool) {
	for _, s := range settings {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// envBound reports whether s can be set by an environment variable:
// every key read, but a mapping.
func (s setting) envBound() bool {
	if s.ignored != "" {
		return false
	}
	if s.field == nil {
		return true
	}
	_, mapping := s.field(&Config{}).(*[]Volume)
	return !mapping
}
