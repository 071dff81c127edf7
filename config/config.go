package config

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
	"golang.org/x/crypto/ssh"
)

// Volume is one storage volume; new machines are placed on volumes that
// accept them and are not above their high-water mark.
type Volume struct {
	Name         string `json:"name"`
	Path         string `json:"path"`
	AcceptNew    bool   `json:"accept_new"`
	HighWaterPct int    `json:"accept_new_high_water_pct"`
	// MaxUsagePct is the disk guard: above this fill level no backup
	// starts on the volume (max_usage_pct).
	MaxUsagePct int `json:"max_usage_pct"`
	// MaxInodeUsagePct is the disk guard for inodes: above this share of
	// inodes used no backup starts on the volume (max_inode_usage_pct).
	MaxInodeUsagePct int `json:"max_inode_usage_pct"`
}

// Config is the validated, defaulted configuration. Field comments give
// the config.d key.
type Config struct {
	// Dir is the configuration directory this was loaded from.
	Dir string `json:"-"`
	// Files are the config.d files read, in merge order.
	Files []string `json:"-"`

	Name          string `json:"name"`            // name
	Secret        string `json:"secret"`          // secret
	APIURL        string `json:"api_url"`         // api_url; empty: built-in coordinator
	APIAuth       string `json:"api_auth"`        // api_auth (legacy string form)
	APIAuthName   string `json:"api_auth_name"`   // api_auth_name
	APIAuthSecret string `json:"api_auth_secret"` // api_auth_secret
	APICAFile     string `json:"api_ca_file"`     // api_ca_file
	// APITimeout bounds each API call (api_timeout).
	APITimeout time.Duration `json:"api_timeout"`
	// Published is nil when the key is absent: then it is not sent.
	Published *bool `json:"published"`

	LogFile           string `json:"log_file"`            // log_file: systemd, syslog, a path, or "" (the journal under systemd, else stderr)
	LockDir           string `json:"lock_dir"`            // lock_dir
	VarDir            string `json:"var_dir"`             // var_dir
	SnapshotMode      string `json:"snapshot_mode"`       // snapshot_mode
	PreserveHardLinks bool   `json:"preserve_hard_links"` // preserve_hard_links
	Timezone          string `json:"timezone"`            // timezone
	// Location is Timezone loaded.
	Location *time.Location `json:"-"`

	AcceptNewHighWaterPct int      `json:"accept_new_high_water_pct"` // accept_new_high_water_pct
	Volumes               []Volume `json:"volumes"`                   // volumes, sorted by name
	MaxUsagePct           int      `json:"max_usage_pct"`             // max_usage_pct: the disk guard's default
	MaxInodeUsagePct      int      `json:"max_inode_usage_pct"`       // max_inode_usage_pct: the inode guard's default
	MetricsListen         string   `json:"metrics_listen"`            // metrics_listen; empty: no /metrics

	SSHPingHost string `json:"ssh_ping_host"` // ssh_ping_host
	SSHPingPort int    `json:"ssh_ping_port"` // ssh_ping_port
	SSHPingUser string `json:"ssh_ping_user"` // ssh_ping_user
	// SSHPingHostKeys are the advertised host keys from ssh_ping_host_keys
	// or ssh_ping_host_keys_glob; empty means "the public halves of
	// SSHHostKeyFiles", which the caller derives after loading the keys.
	SSHPingHostKeys []string `json:"ssh_ping_host_keys"`

	SSHListen            string        `json:"ssh_listen"`             // ssh_listen
	SSHHostKeyFiles      []string      `json:"ssh_host_key_files"`     // ssh_host_key_files
	UpdateConfigInterval time.Duration `json:"update_config_interval"` // update_config_interval
	MaxConcurrentBackups int           `json:"max_concurrent_backups"` // max_concurrent_backups
	RsyncCommand         string        `json:"rsync_command"`          // rsync_command
	// ControlSocket is the Unix socket `status` and `restore` ask serve
	// on (control_socket).
	ControlSocket string `json:"control_socket"`
	// ControlSocketLink, when set, is VAR_DIR/control.sock, where serve
	// links its socket when the default put it in systemd's runtime
	// directory: a command run from a shell, without RUNTIME_DIRECTORY,
	// finds it there.
	ControlSocketLink string `json:"-"`

	CoordinatorListen         string `json:"coordinator_listen"`          // coordinator_listen
	CoordinatorTLSCert        string `json:"coordinator_tls_cert"`        // coordinator_tls_cert
	CoordinatorTLSKey         string `json:"coordinator_tls_key"`         // coordinator_tls_key
	MachineRegistrationSecret string `json:"machine_registration_secret"` // machine_registration_secret

	// CoordinatorInsecureListen allows coordinator_listen on a
	// non-loopback address without TLS (coordinator_insecure_listen).
	CoordinatorInsecureListen bool `json:"coordinator_insecure_listen"`

	// SSH admission and session limits (sshlimits.go).
	SSHMaxStartups          MaxStartups    `json:"ssh_max_startups"`            // ssh_max_startups
	SSHPerSourceMaxStartups int            `json:"ssh_per_source_max_startups"` // ssh_per_source_max_startups
	SSHTrustedNetworks      []netip.Prefix `json:"ssh_trusted_networks"`        // ssh_trusted_networks
	RestoreMaxLifetime      time.Duration  `json:"restore_max_lifetime"`        // restore_max_lifetime
	// Per-machine limits of the SSH server (sshlimits.go).
	SSHMaxConnectionsPerMachine int           `json:"ssh_max_connections_per_machine"` // ssh_max_connections_per_machine
	SSHMaxSessionsPerMachine    int           `json:"ssh_max_sessions_per_machine"`    // ssh_max_sessions_per_machine
	SSHSessionRequestTimeout    time.Duration `json:"ssh_session_request_timeout"`     // ssh_session_request_timeout

	// TunnelPortRange: the agent ports a reverse forward may name and a
	// restore listen on (tunnel.go).
	TunnelPortRange PortRange `json:"tunnel_port_range"` // tunnel_port_range
	// The report spool's limits (report_spool_max_count, _bytes).
	ReportSpoolMaxCount int   `json:"report_spool_max_count"` // report_spool_max_count
	ReportSpoolMaxBytes int64 `json:"report_spool_max_bytes"` // report_spool_max_bytes
	// OrphanWarnAfter: an orphaned machine (data here, no longer assigned
	// here) turns check WARNING after this long (orphan_warn_after).
	OrphanWarnAfter time.Duration `json:"orphan_warn_after"`
	// OrphanExpiry: serve purges orphans older than this after a key
	// refresh; 0 (orphan_expiry unset) never (orphan_expiry).
	OrphanExpiry time.Duration `json:"orphan_expiry"`

	// Web is the read-only dashboard (web.go).
	Web

	// Warnings are non-fatal findings that need an operator: unknown keys.
	Warnings []string `json:"-"`
	// Ignored names the keys of the old storage unit that this
	// implementation accepts and does not use.
	Ignored []string `json:"-"`
	// Origins maps every top-level key set by a file or the environment
	// to that file ("config.d/10-main.json") or variable ("environment
	// TURKU_STORAGE_SSH_LISTEN"); other keys have their defaults.
	Origins map[string]string `json:"-"`
}

// EmbeddedCoordinator reports whether no api_url is configured, so serve
// runs the built-in coordinator.
func (c *Config) EmbeddedCoordinator() bool { return c.APIURL == "" }

// keys lists every key this implementation reads at the top level.
var keys = []string{
	"name", "secret", "api_url", "api_auth", "api_auth_name", "api_auth_secret",
	"api_ca_file", "api_timeout", "published", "log_file", "lock_dir", "var_dir",
	"snapshot_mode", "preserve_hard_links", "timezone", "accept_new_high_water_pct",
	"volumes", "ssh_ping_host", "ssh_ping_port", "ssh_ping_user",
	"ssh_ping_host_keys", "ssh_ping_host_keys_glob", "ssh_listen",
	"ssh_host_key_files", "update_config_interval", "max_concurrent_backups",
	"rsync_command", "coordinator_listen", "coordinator_tls_cert",
	"coordinator_tls_key", "machine_registration_secret", "coordinator_insecure_listen",
	"max_usage_pct", "max_inode_usage_pct", "metrics_listen", "control_socket",
	"ssh_max_startups", "ssh_per_source_max_startups", "ssh_trusted_networks",
	"restore_max_lifetime", "ssh_max_connections_per_machine", "ssh_max_sessions_per_machine",
	"ssh_session_request_timeout", "tunnel_port_range", "report_spool_max_count",
	"report_spool_max_bytes", "orphan_warn_after", "orphan_expiry",
	"web_listen", "web_tls_cert", "web_tls_key", "web_auth_file", "web_max_age", "web_warn_age",
}

// openSSHKeys are the keys the old storage unit read that this one does
// not: they generated authorized_keys, which the embedded SSH server makes
// meaningless. They are accepted and named as ignored.
var openSSHKeys = []string{"authorized_keys_file", "authorized_keys_user", "authorized_keys_command"}

// SnapshotModes are the snapshot modes the backup engine knows.
var SnapshotModes = []string{"link-dest", "none"}

// setDefaults declares every default that does not depend on another key.
// Derived ones are set in build: ssh_listen (":" + ssh_ping_port),
// ssh_host_key_files (var_dir's ssh_host_ed25519_key, or the private
// halves of the advertised keys), lock_dir (var_dir's lock), ssh_ping_host
// (this host's name) and the
// volumes' accept_new_high_water_pct (the top-level one).
func setDefaults(v *viper.Viper) {
	v.SetDefault("lock_dir", "") // derived from var_dir in build
	v.SetDefault("var_dir", "/var/lib/turku-storage")
	v.SetDefault("snapshot_mode", "link-dest")
	v.SetDefault("preserve_hard_links", false)
	v.SetDefault("ssh_ping_port", int64(22))
	v.SetDefault("ssh_ping_user", "root")
	v.SetDefault("timezone", "UTC")
	v.SetDefault("accept_new_high_water_pct", int64(80))
	v.SetDefault("update_config_interval", "5m")
	v.SetDefault("api_timeout", "30s")
	v.SetDefault("max_concurrent_backups", int64(4))
	v.SetDefault("rsync_command", "rsync")
	v.SetDefault("coordinator_listen", "127.0.0.1:8410")
	v.SetDefault("log_file", "")
	v.SetDefault("max_usage_pct", int64(95))
	v.SetDefault("max_inode_usage_pct", int64(95))
	v.SetDefault("control_socket", "") // derived in build: the instance's runtime directory or var_dir
	setSSHLimitDefaults(v)
	setTunnelDefaults(v)
	setOrphanDefaults(v)
	setWebDefaults(v)
}

// reader reads typed values and collects every problem with its file.
type reader struct {
	v        *viper.Viper
	src      *source
	problems []string
	warnings []string
	// sshdGlob is SSHDHostKeyGlob; tests point it elsewhere.
	sshdGlob string
	// placeholders are the keys refused for holding a placeholder
	// (placeholder.go); nothing more is said of them.
	placeholders map[string]bool
}

func (r *reader) fail(key, format string, args ...any) {
	if r.placeholders[key] {
		return
	}
	r.problems = append(r.problems, fmt.Sprintf("%s: %s: %s", r.src.where(key), key, fmt.Sprintf(format, args...)))
}

func (r *reader) str(key string) string {
	switch t := r.v.Get(key).(type) { // an environment value is a string too
	case nil:
		return ""
	case string:
		r.checkPlaceholder(key, t)
		return t
	default:
		r.fail(key, "want a string, got %s", typeName(t))
		return ""
	}
}

func (r *reader) required(key string) string {
	s := r.str(key)
	if s == "" && r.v.IsSet(key) {
		r.fail(key, "must not be empty")
	} else if !r.v.IsSet(key) {
		r.problems = append(r.problems, fmt.Sprintf("%s: %s: required (not set in %s)",
			r.src.dir, key, strings.Join(r.src.files, ", ")))
	}
	return s
}

func (r *reader) boolean(key string) bool {
	switch t := r.v.Get(key).(type) {
	case nil:
		return false
	case bool:
		return t
	case string:
		if r.src.fromEnv(key) {
			b, err := strconv.ParseBool(t)
			if err != nil {
				r.fail(key, "want true or false, got %q", t)
			}
			return b
		}
		r.fail(key, "want true or false, got %s", typeName(t))
		return false
	default:
		r.fail(key, "want true or false, got %s", typeName(t))
		return false
	}
}

func (r *reader) integer(key string, lo, hi int64) int {
	val := r.v.Get(key)
	if s, ok := val.(string); ok && r.src.fromEnv(key) {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			r.fail(key, "want an integer, got %q", s)
			return 0
		}
		val = n
	}
	return r.integerValue(key, val, lo, hi)
}

func (r *reader) integerValue(key string, val any, lo, hi int64) int {
	var n int64
	switch t := val.(type) {
	case int64:
		n = t
	case float64:
		if t != math.Trunc(t) {
			r.fail(key, "want an integer, got %v", t)
			return 0
		}
		n = int64(t)
	default:
		r.fail(key, "want an integer, got %s", typeName(t))
		return 0
	}
	if n < lo || n > hi {
		r.fail(key, "%d is out of range %d..%d", n, lo, hi)
		return 0
	}
	return int(n)
}

// duration accepts Go durations ("5m", "30s") or a number of seconds.
// maxDurationSeconds is the largest number of seconds a time.Duration
// holds; more would wrap around silently.
const maxDurationSeconds = math.MaxInt64 / int64(time.Second)

func (r *reader) duration(key string) time.Duration {
	var d time.Duration
	val := r.v.Get(key)
	if s, ok := val.(string); ok && r.src.fromEnv(key) {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			val = n // seconds, as in a file
		}
	}
	switch t := val.(type) {
	case string:
		var err error
		if d, err = time.ParseDuration(t); err != nil {
			r.fail(key, "want a duration like \"5m\" or a number of seconds, got %q", t)
			return 0
		}
	case int64:
		if t > maxDurationSeconds {
			r.fail(key, "%d seconds is out of range (at most %d)", t, maxDurationSeconds)
			return 0
		}
		d = time.Duration(t) * time.Second
	case float64:
		if math.IsNaN(t) || t*float64(time.Second) >= math.MaxInt64 {
			r.fail(key, "%v seconds is out of range (at most %d)", t, maxDurationSeconds)
			return 0
		}
		d = time.Duration(t * float64(time.Second))
	default:
		r.fail(key, "want a duration like \"5m\" or a number of seconds, got %s", typeName(t))
		return 0
	}
	if d <= 0 {
		r.fail(key, "must be positive")
	}
	return d
}

func (r *reader) strings(key string) []string {
	switch t := r.v.Get(key).(type) {
	case nil:
		return nil
	case string:
		if r.src.fromEnv(key) {
			var out []string
			for _, e := range strings.Split(t, ",") {
				if e = strings.TrimSpace(e); e != "" {
					out = append(out, e)
				}
			}
			return out
		}
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for i, e := range t {
			s, ok := e.(string)
			if !ok {
				r.fail(fmt.Sprintf("%s[%d]", key, i), "want a string, got %s", typeName(e))
				continue
			}
			out = append(out, s)
		}
		return out
	default:
		r.fail(key, "want a list of strings, got %s", typeName(t))
		return nil
	}
}

func build(v *viper.Viper, src *source, sshdGlob string) (*Config, error) {
	r := &reader{v: v, src: src, sshdGlob: sshdGlob}
	c := &Config{Dir: filepath.Dir(src.dir), Files: src.files, Origins: src.origins()}
	r.checkKeys(c)
	r.checkEnv(c)

	c.Name = r.required("name")
	c.Secret = r.required("secret")
	c.APIURL = r.str("api_url")
	if c.APIURL != "" && !strings.HasPrefix(c.APIURL, "http://") && !strings.HasPrefix(c.APIURL, "https://") {
		r.fail("api_url", "want an http:// or https:// URL, got %q", c.APIURL)
	}
	c.APIAuth = r.str("api_auth")
	c.APIAuthName = r.str("api_auth_name")
	c.APIAuthSecret = r.str("api_auth_secret")
	if (c.APIAuthName == "") != (c.APIAuthSecret == "") {
		r.fail("api_auth_name", "api_auth_name and api_auth_secret go together")
	}
	c.APICAFile = r.str("api_ca_file")
	c.APITimeout = r.duration("api_timeout")
	if v.IsSet("published") {
		p := r.boolean("published")
		c.Published = &p
	}
	c.LogFile = r.str("log_file")
	c.VarDir = r.str("var_dir")
	c.LockDir = r.str("lock_dir")
	// Derived: a private directory under var_dir (see docs/configuration.md).
	if c.LockDir == "" && filepath.IsAbs(c.VarDir) {
		c.LockDir = filepath.Join(c.VarDir, "lock")
	}
	c.SnapshotMode = r.str("snapshot_mode")
	if !slices.Contains(SnapshotModes, c.SnapshotMode) {
		r.fail("snapshot_mode", "unknown mode %q: want one of %s", c.SnapshotMode, strings.Join(SnapshotModes, ", "))
	}
	c.PreserveHardLinks = r.boolean("preserve_hard_links")
	c.Timezone = r.str("timezone")
	c.Location = time.UTC
	if c.Timezone != "" {
		loc, err := time.LoadLocation(c.Timezone)
		if err != nil {
			r.fail("timezone", "unknown time zone %q", c.Timezone)
		} else {
			c.Location = loc
		}
	}
	c.AcceptNewHighWaterPct = r.integer("accept_new_high_water_pct", 0, 100)
	c.MaxUsagePct = r.integer("max_usage_pct", 1, 100)
	c.MaxInodeUsagePct = r.integer("max_inode_usage_pct", 1, 100)
	c.Volumes = r.volumes(c.AcceptNewHighWaterPct, c.MaxUsagePct, c.MaxInodeUsagePct)
	c.MetricsListen = r.str("metrics_listen")
	var metricsListen *listenAddr
	if c.MetricsListen != "" {
		metricsListen = r.listen("metrics_listen", c.MetricsListen)
	}

	c.SSHPingHost = r.str("ssh_ping_host")
	if c.SSHPingHost == "" {
		c.SSHPingHost, _ = os.Hostname()
	}
	c.SSHPingPort = r.integer("ssh_ping_port", 1, 65535)
	c.SSHPingUser = r.str("ssh_ping_user")
	if c.SSHPingUser == "" {
		r.fail("ssh_ping_user", "must not be empty")
	}
	var adv *advertisedHostKeys
	if v.IsSet("ssh_ping_host_keys") {
		c.SSHPingHostKeys = r.strings("ssh_ping_host_keys")
		adv = &advertisedHostKeys{key: "ssh_ping_host_keys"}
	} else if g := r.str("ssh_ping_host_keys_glob"); g != "" {
		adv = &advertisedHostKeys{key: "ssh_ping_host_keys_glob"}
		c.SSHPingHostKeys, adv.files = r.globKeys("ssh_ping_host_keys_glob", g)
	}
	c.SSHListen = r.str("ssh_listen")
	if c.SSHListen == "" {
		c.SSHListen = fmt.Sprintf(":%d", c.SSHPingPort)
	}
	sshListen := r.listen("ssh_listen", c.SSHListen)
	c.SSHHostKeyFiles = r.strings("ssh_host_key_files")
	if !v.IsSet("ssh_host_key_files") {
		c.SSHHostKeyFiles = []string{filepath.Join(c.VarDir, "ssh_host_ed25519_key")}
	} else if len(c.SSHHostKeyFiles) == 0 {
		r.fail("ssh_host_key_files", "must list at least one key file")
	}
	c.UpdateConfigInterval = r.duration("update_config_interval")
	c.MaxConcurrentBackups = r.integer("max_concurrent_backups", 1, 1024)
	c.RsyncCommand = r.str("rsync_command")
	if c.RsyncCommand == "" {
		r.fail("rsync_command", "must not be empty")
	}
	c.CoordinatorListen = r.str("coordinator_listen")
	c.CoordinatorTLSCert = r.str("coordinator_tls_cert")
	c.CoordinatorTLSKey = r.str("coordinator_tls_key")
	if (c.CoordinatorTLSCert == "") != (c.CoordinatorTLSKey == "") {
		r.fail("coordinator_tls_cert", "coordinator_tls_cert and coordinator_tls_key go together")
	}
	// In the order serve binds them: the later of two on one port fails.
	r.checkListenConflicts([]*listenAddr{sshListen, r.checkCoordinatorListen(c), metricsListen, r.web(c)})
	c.MachineRegistrationSecret = r.str("machine_registration_secret")
	c.ControlSocket = r.str("control_socket")
	if c.ControlSocket == "" && filepath.IsAbs(c.VarDir) {
		c.ControlSocket, c.ControlSocketLink = defaultControlSocket(c.VarDir, os.Getenv("RUNTIME_DIRECTORY"))
	}
	if c.ControlSocket == "" {
		// Derived from a var_dir that is not absolute, which is said.
	} else if !filepath.IsAbs(c.ControlSocket) {
		r.fail("control_socket", "want an absolute path, got %q", c.ControlSocket)
	} else if len(c.ControlSocket) > maxSocketPath {
		r.fail("control_socket", "path is %d bytes, longer than a Unix socket address allows (%d)", len(c.ControlSocket), maxSocketPath)
	}
	r.sshLimits(c)
	r.tunnelSettings(c)
	r.orphans(c)

	for _, k := range []string{"var_dir", "lock_dir"} {
		if p := r.str(k); p != "" && !filepath.IsAbs(p) {
			r.fail(k, "want an absolute path, got %q", p)
		}
	}
	if filepath.IsAbs(c.LockDir) {
		r.checkLockDir(c.LockDir)
	}
	for i, k := range c.SSHPingHostKeys {
		from := fmt.Sprintf("ssh_ping_host_keys[%d]", i)
		if adv.files != nil {
			from = adv.files[i]
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			if adv.files != nil {
				r.fail(adv.key, "%s: not a public key in authorized_keys form: %v", from, err)
			} else {
				r.fail(from, "not a public key in authorized_keys form: %v", err)
			}
		}
		adv.keys = append(adv.keys, hostKeyFile{pub: pub, from: from, err: err})
	}
	r.resolveHostKeys(c, adv, v.IsSet("ssh_host_key_files"), r.sshdGlob)
	// resolveHostKeys reads the served keys when keys are advertised;
	// behind OpenSSH (no sshdGlob) serve's keys are not used.
	r.checkFiles(c, v.IsSet("ssh_host_key_files"), r.sshdGlob != "" && (adv == nil || len(adv.keys) == 0))
	c.Warnings = append(c.Warnings, r.warnings...)
	if len(r.problems) > 0 {
		return nil, &Error{Problems: r.problems}
	}
	return c, nil
}

func (r *reader) volumes(defaultHWM, defaultMaxUsage, defaultMaxInodeUsage int) []Volume {
	raw := r.v.Get("volumes")
	if raw == nil {
		r.required("volumes")
		return nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		r.fail("volumes", "want a mapping of volume name to settings, got %s", typeName(raw))
		return nil
	}
	if len(m) == 0 {
		r.fail("volumes", "must define at least one volume")
		return nil
	}
	var out []Volume
	for _, lower := range sortedKeys(m) {
		// viper folds the names to lower case; they are written back
		// as the files spell them.
		name := r.src.volumeNames[lower]
		if name == "" {
			name = lower
		}
		key := "volumes." + name
		vm, ok := m[lower].(map[string]any)
		if !ok {
			r.fail(key, "want a mapping with a path, got %s", typeName(m[lower]))
			continue
		}
		vol := Volume{Name: name, AcceptNew: true, HighWaterPct: defaultHWM, MaxUsagePct: defaultMaxUsage, MaxInodeUsagePct: defaultMaxInodeUsage}
		for _, k := range sortedKeys(vm) {
			sub := key + "." + k
			switch k {
			case "path":
				s, ok := vm[k].(string)
				if !ok || s == "" {
					r.fail(sub, "want a non-empty string, got %s", typeName(vm[k]))
				} else if !filepath.IsAbs(s) {
					r.fail(sub, "want an absolute path, got %q", s)
				}
				vol.Path = s
			case "accept_new":
				b, ok := vm[k].(bool)
				if !ok {
					r.fail(sub, "want true or false, got %s", typeName(vm[k]))
				}
				vol.AcceptNew = b
			case "accept_new_high_water_pct":
				vol.HighWaterPct = r.integerValue(sub, vm[k], 0, 100)
			case "max_usage_pct":
				vol.MaxUsagePct = r.integerValue(sub, vm[k], 1, 100)
			case "max_inode_usage_pct":
				vol.MaxInodeUsagePct = r.integerValue(sub, vm[k], 1, 100)
			}
			// Other keys were reported by checkKeys.
		}
		if _, ok := vm["path"]; !ok {
			r.fail(key+".path", "required")
		}
		out = append(out, vol)
	}
	slices.SortFunc(out, func(a, b Volume) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// globKeys reads the public keys in the files pattern matches, one a
// file, and returns them with their files.
func (r *reader) globKeys(key, pattern string) (keys, files []string) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		r.fail(key, "bad pattern %q: %v", pattern, err)
		return nil, nil
	}
	for _, f := range matches {
		data, err := os.ReadFile(f)
		if err != nil {
			r.fail(key, "read %s: %v", f, err)
			continue
		}
		keys = append(keys, strings.TrimRight(string(data), "\r\n"))
		files = append(files, f)
	}
	return keys, files
}

// maxSocketPath is the longest path a Unix socket address holds on Linux
// (sun_path is 108 bytes with the terminating NUL).
const maxSocketPath = 107

// MarshalJSON writes the durations as Go duration strings ("30s"), a form
// config.d reads back unchanged: as bare numbers they would be
// nanoseconds, which config.d would read as seconds.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // without this method
	return json.Marshal(struct {
		plain
		APITimeout           string `json:"api_timeout"`
		UpdateConfigInterval string `json:"update_config_interval"`
		RestoreMaxLifetime   string `json:"restore_max_lifetime"`
		SessionRequest       string `json:"ssh_session_request_timeout"`
		OrphanWarnAfter      string `json:"orphan_warn_after"`
		OrphanExpiry         string `json:"orphan_expiry,omitempty"`
		WebMaxAge            string `json:"web_max_age"`
		WebWarnAge           string `json:"web_warn_age"`
	}{plain(c), c.APITimeout.String(), c.UpdateConfigInterval.String(), c.RestoreMaxLifetime.String(),
		c.SSHSessionRequestTimeout.String(), c.OrphanWarnAfter.String(), orphanExpiryString(c.OrphanExpiry),
		c.WebMaxAge.String(), c.WebWarnAge.String()})
}

// Redacted returns a copy with every secret replaced, for printing.
func (c *Config) Redacted() *Config {
	out := *c
	for _, s := range []*string{&out.Secret, &out.APIAuth, &out.APIAuthSecret, &out.MachineRegistrationSecret} {
		if *s != "" {
			*s = "********"
		}
	}
	return &out
}

// ControlSocketName is the control socket's file name in its default
// directory.
const ControlSocketName = "control.sock"

// defaultControlSocket is control_socket's default for this instance:
// in systemd's RUNTIME_DIRECTORY (the unit's RuntimeDirectory=; the
// first when it lists several) when set, linked from VAR_DIR, else in
// VAR_DIR. Two units on one host with their own var_dir (or their own
// RuntimeDirectory) never share a socket.
func defaultControlSocket(varDir, runtimeDir string) (socket, link string) {
	inVar := filepath.Join(varDir, ControlSocketName)
	rd, _, _ := strings.Cut(runtimeDir, ":")
	if rd == "" || !filepath.IsAbs(rd) {
		return inVar, ""
	}
	return filepath.Join(rd, ControlSocketName), inVar
}
