package config

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
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
	Name         string
	Path         string
	AcceptNew    bool
	HighWaterPct int
	// MaxUsagePct is the disk guard: above this fill level no backup
	// starts on the volume (max_usage_pct).
	MaxUsagePct int
	// MaxInodeUsagePct is the disk guard for inodes: above this share of
	// inodes used no backup starts on the volume (max_inode_usage_pct).
	MaxInodeUsagePct int
}

// Config is the validated, defaulted configuration. The settings table
// (settings.go) names each field's key, default and reload class.
type Config struct {
	// Dir is the configuration directory this was loaded from.
	Dir string
	// Files are the config.d files read, in merge order.
	Files []string

	Name          string
	Secret        string
	APIURL        string // empty: built-in coordinator
	APIAuth       string // api_auth (legacy string form)
	APIAuthName   string
	APIAuthSecret string
	APICAFile     string
	// APITimeout bounds each API call (api_timeout).
	APITimeout time.Duration
	// Published is nil when the key is absent: then it is not sent.
	Published *bool

	LogFile           string // systemd, syslog, a path, or "" (the journal under systemd, else stderr)
	LockDir           string
	VarDir            string
	SnapshotMode      string
	PreserveHardLinks bool
	Timezone          string
	// Location is Timezone loaded.
	Location *time.Location

	AcceptNewHighWaterPct int
	Volumes               []Volume // volumes, sorted by name
	MaxUsagePct           int      // the disk guard's default
	MaxInodeUsagePct      int      // the inode guard's default
	MetricsListen         string   // empty: no /metrics

	SSHPingHost string
	SSHPingPort int
	SSHPingUser string
	// SSHPingHostKeys are the advertised host keys from ssh_ping_host_keys
	// or ssh_ping_host_keys_glob; empty means "the public halves of
	// SSHHostKeyFiles", which the caller derives after loading the keys.
	SSHPingHostKeys []string

	SSHListen            string
	SSHHostKeyFiles      []string
	UpdateConfigInterval time.Duration
	MaxConcurrentBackups int
	RsyncCommand         string
	// ControlSocket is the Unix socket `status` and `restore` ask serve
	// on (control_socket).
	ControlSocket string
	// ControlSocketLink, when set, is VAR_DIR/control.sock, where serve
	// links its socket when the default put it in systemd's runtime
	// directory: a command run from a shell, without RUNTIME_DIRECTORY,
	// finds it there.
	ControlSocketLink string

	CoordinatorListen         string
	CoordinatorTLSCert        string
	CoordinatorTLSKey         string
	MachineRegistrationSecret string

	// CoordinatorInsecureListen allows coordinator_listen on a
	// non-loopback address without TLS (coordinator_insecure_listen).
	CoordinatorInsecureListen bool

	// SSH admission and session limits (sshlimits.go).
	SSHMaxStartups          MaxStartups
	SSHPerSourceMaxStartups int
	SSHTrustedNetworks      []netip.Prefix
	RestoreMaxLifetime      time.Duration
	// Per-machine limits of the SSH server (sshlimits.go).
	SSHMaxConnectionsPerMachine int
	SSHMaxSessionsPerMachine    int
	SSHSessionRequestTimeout    time.Duration

	// TunnelPortRange: the agent ports a reverse forward may name and a
	// restore listen on (tunnel.go).
	TunnelPortRange PortRange
	// The report spool's limits (report_spool_max_count, _bytes).
	ReportSpoolMaxCount int
	ReportSpoolMaxBytes int64
	// OrphanWarnAfter: an orphaned machine (data here, no longer assigned
	// here) turns check WARNING after this long.
	OrphanWarnAfter time.Duration
	// OrphanExpiry: serve purges orphans older than this after a key
	// refresh; 0 (orphan_expiry unset) never.
	OrphanExpiry time.Duration

	// Web is the read-only dashboard (web.go).
	Web

	// Warnings are non-fatal findings that need an operator: unknown keys.
	Warnings []string
	// Ignored names the keys of the old storage unit that this
	// implementation accepts and does not use.
	Ignored []string
	// Origins maps every top-level key set by a file or the environment
	// to that file ("config.d/10-main.json") or variable ("environment
	// TURKU_STORAGE_SSH_LISTEN"); other keys have their defaults.
	Origins map[string]string
}

// EmbeddedCoordinator reports whether no api_url is configured, so serve
// runs the built-in coordinator.
func (c *Config) EmbeddedCoordinator() bool { return c.APIURL == "" }

// SnapshotModes are the snapshot modes the backup engine knows.
var SnapshotModes = []string{"link-dest", "none"}

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
	r.readSettings(c)

	// What the table cannot say: checks across keys and derived defaults.
	if c.APIURL != "" && !strings.HasPrefix(c.APIURL, "http://") && !strings.HasPrefix(c.APIURL, "https://") {
		r.fail("api_url", "want an http:// or https:// URL, got %q", c.APIURL)
	}
	if (c.APIAuthName == "") != (c.APIAuthSecret == "") {
		r.fail("api_auth_name", "api_auth_name and api_auth_secret go together")
	}
	// Derived: a private directory under var_dir (see docs/configuration.md).
	if c.LockDir == "" && filepath.IsAbs(c.VarDir) {
		c.LockDir = filepath.Join(c.VarDir, "lock")
	}
	if !slices.Contains(SnapshotModes, c.SnapshotMode) {
		r.fail("snapshot_mode", "unknown mode %q: want one of %s", c.SnapshotMode, strings.Join(SnapshotModes, ", "))
	}
	c.Location = time.UTC
	if c.Timezone != "" {
		loc, err := time.LoadLocation(c.Timezone)
		if err != nil {
			r.fail("timezone", "unknown time zone %q", c.Timezone)
		} else {
			c.Location = loc
		}
	}
	c.Volumes = r.volumes(c)
	var metricsListen *listenAddr
	if c.MetricsListen != "" {
		metricsListen = r.listen("metrics_listen", c.MetricsListen)
	}

	if c.SSHPingHost == "" {
		c.SSHPingHost, _ = os.Hostname()
	}
	if c.SSHPingUser == "" {
		r.fail("ssh_ping_user", "must not be empty")
	}
	var adv *advertisedHostKeys
	if v.IsSet("ssh_ping_host_keys") {
		adv = &advertisedHostKeys{key: "ssh_ping_host_keys"}
	} else if g := r.str("ssh_ping_host_keys_glob"); g != "" {
		adv = &advertisedHostKeys{key: "ssh_ping_host_keys_glob"}
		c.SSHPingHostKeys, adv.files = r.globKeys("ssh_ping_host_keys_glob", g)
	}
	if c.SSHListen == "" {
		c.SSHListen = fmt.Sprintf(":%d", c.SSHPingPort)
	}
	sshListen := r.listen("ssh_listen", c.SSHListen)
	if !v.IsSet("ssh_host_key_files") {
		c.SSHHostKeyFiles = []string{filepath.Join(c.VarDir, "ssh_host_ed25519_key")}
	} else if len(c.SSHHostKeyFiles) == 0 {
		r.fail("ssh_host_key_files", "must list at least one key file")
	}
	if c.RsyncCommand == "" {
		r.fail("rsync_command", "must not be empty")
	}
	if (c.CoordinatorTLSCert == "") != (c.CoordinatorTLSKey == "") {
		r.fail("coordinator_tls_cert", "coordinator_tls_cert and coordinator_tls_key go together")
	}
	// In the order serve binds them: the later of two on one port fails.
	r.checkListenConflicts([]*listenAddr{sshListen, r.checkCoordinatorListen(c), metricsListen, r.web(c)})
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

// volumes reads the volumes mapping; a volume's keys it does not set
// have the defaults of volumeSettings, or c's top-level values they name.
func (r *reader) volumes(c *Config) []Volume {
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
		vol := Volume{Name: name}
		for _, s := range volumeSettings {
			sub := key + "." + s.key
			val, set := vm[s.key]
			switch {
			case set:
				r.volumeValue(s, sub, val, s.field(&vol))
			case s.required:
				r.fail(sub, "required")
			case s.from != "":
				top, _ := lookup(s.from)
				reflect.ValueOf(s.field(&vol)).Elem().Set(reflect.ValueOf(top.field(c)).Elem())
			case s.def != "":
				def, _ := defaultValue(s.field(&vol), s.def) // TestSettingsDefaults
				reflect.ValueOf(s.field(&vol)).Elem().Set(reflect.ValueOf(def).Convert(reflect.TypeOf(s.field(&vol)).Elem()))
			}
			// Other keys were reported by checkKeys.
		}
		out = append(out, vol)
	}
	slices.SortFunc(out, func(a, b Volume) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// volumeValue reads val, a volume's value for s (key sub), into the field
// p points at.
func (r *reader) volumeValue(s volumeSetting, sub string, val any, p any) {
	switch p := p.(type) {
	case *string: // path, the only one
		str, ok := val.(string)
		if !ok || str == "" {
			r.fail(sub, "want a non-empty string, got %s", typeName(val))
		} else if !filepath.IsAbs(str) {
			r.fail(sub, "want an absolute path, got %q", str)
		}
		*p = str
	case *bool:
		b, ok := val.(bool)
		if !ok {
			r.fail(sub, "want true or false, got %s", typeName(val))
		}
		*p = b
	case *int:
		*p = r.integerValue(sub, val, s.min, s.max)
	default:
		r.fail(sub, "no reader for %T", p) // TestSettingsReadable
	}
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
