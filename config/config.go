package config

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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

	LogFile           string `json:"log_file"`            // log_file: systemd, syslog, a path, or "" for stderr
	LockDir           string `json:"lock_dir"`            // lock_dir
	VarDir            string `json:"var_dir"`             // var_dir
	SnapshotMode      string `json:"snapshot_mode"`       // snapshot_mode
	PreserveHardLinks bool   `json:"preserve_hard_links"` // preserve_hard_links
	Timezone          string `json:"timezone"`            // timezone
	// Location is Timezone loaded.
	Location *time.Location `json:"-"`

	AcceptNewHighWaterPct int      `json:"accept_new_high_water_pct"` // accept_new_high_water_pct
	Volumes               []Volume `json:"volumes"`                   // volumes, sorted by name

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

	CoordinatorListen         string `json:"coordinator_listen"`          // coordinator_listen
	CoordinatorTLSCert        string `json:"coordinator_tls_cert"`        // coordinator_tls_cert
	CoordinatorTLSKey         string `json:"coordinator_tls_key"`         // coordinator_tls_key
	MachineRegistrationSecret string `json:"machine_registration_secret"` // machine_registration_secret

	// SSH admission and session limits (sshlimits.go).
	SSHMaxStartups          MaxStartups    `json:"ssh_max_startups"`            // ssh_max_startups
	SSHPerSourceMaxStartups int            `json:"ssh_per_source_max_startups"` // ssh_per_source_max_startups
	SSHTrustedNetworks      []netip.Prefix `json:"ssh_trusted_networks"`        // ssh_trusted_networks
	RestoreMaxLifetime      time.Duration  `json:"restore_max_lifetime"`        // restore_max_lifetime

	// Warnings are non-fatal findings: unknown keys, ignored keys.
	Warnings []string `json:"-"`
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
	"coordinator_tls_key", "machine_registration_secret",
	"ssh_max_startups", "ssh_per_source_max_startups", "ssh_trusted_networks",
	"restore_max_lifetime",
}

// openSSHKeys were used to generate authorized_keys; the embedded SSH
// server makes them meaningless.
var openSSHKeys = []string{"authorized_keys_file", "authorized_keys_user", "authorized_keys_command"}

// SnapshotModes are the snapshot modes the backup engine knows.
var SnapshotModes = []string{"link-dest", "none"}

func setDefaults(v *viper.Viper) {
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
	setSSHLimitDefaults(v)
}

// reader reads typed values and collects every problem with its file.
type reader struct {
	v        *viper.Viper
	src      *source
	problems []string
	warnings []string
}

func (r *reader) fail(key, format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf("%s: %s: %s", r.src.where(key), key, fmt.Sprintf(format, args...)))
}

func (r *reader) str(key string) string {
	switch t := r.v.Get(key).(type) {
	case nil:
		return ""
	case string:
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
	default:
		r.fail(key, "want true or false, got %s", typeName(t))
		return false
	}
}

func (r *reader) integer(key string, lo, hi int64) int {
	return r.integerValue(key, r.v.Get(key), lo, hi)
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
	switch t := r.v.Get(key).(type) {
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

func build(v *viper.Viper, src *source) (*Config, error) {
	r := &reader{v: v, src: src}
	c := &Config{Dir: filepath.Dir(src.dir), Files: src.files}

	for _, k := range sortedKeys(src.values) {
		switch {
		case slices.Contains(keys, k):
		case slices.Contains(openSSHKeys, k):
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s: ignored: the embedded SSH server needs no authorized_keys", src.where(k), k))
		default:
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s: unknown key, ignored", src.where(k), k))
		}
	}

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
	if c.LockDir == "" {
		c.LockDir = defaultLockDir()
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
	c.Volumes = r.volumes(c.AcceptNewHighWaterPct)

	c.SSHPingHost = r.str("ssh_ping_host")
	if c.SSHPingHost == "" {
		c.SSHPingHost, _ = os.Hostname()
	}
	c.SSHPingPort = r.integer("ssh_ping_port", 1, 65535)
	c.SSHPingUser = r.str("ssh_ping_user")
	if c.SSHPingUser == "" {
		r.fail("ssh_ping_user", "must not be empty")
	}
	if v.IsSet("ssh_ping_host_keys") {
		c.SSHPingHostKeys = r.strings("ssh_ping_host_keys")
	} else if g := r.str("ssh_ping_host_keys_glob"); g != "" {
		c.SSHPingHostKeys = r.globKeys("ssh_ping_host_keys_glob", g)
	}
	c.SSHListen = r.str("ssh_listen")
	if c.SSHListen == "" {
		c.SSHListen = fmt.Sprintf(":%d", c.SSHPingPort)
	}
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
	c.MachineRegistrationSecret = r.str("machine_registration_secret")
	r.sshLimits(c)

	for _, k := range []string{"var_dir", "lock_dir"} {
		if p := r.str(k); p != "" && !filepath.IsAbs(p) {
			r.fail(k, "want an absolute path, got %q", p)
		}
	}
	for i, k := range c.SSHPingHostKeys {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			r.fail(fmt.Sprintf("ssh_ping_host_keys[%d]", i), "not a public key in authorized_keys form: %v", err)
		}
	}
	c.Warnings = append(c.Warnings, r.warnings...)
	if len(r.problems) > 0 {
		return nil, &Error{Problems: r.problems}
	}
	return c, nil
}

func (r *reader) volumes(defaultHWM int) []Volume {
	raw, ok := r.src.values["volumes"]
	if !ok {
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
	for _, name := range sortedKeys(m) {
		key := "volumes." + name
		vm, ok := m[name].(map[string]any)
		if !ok {
			r.fail(key, "want a mapping with a path, got %s", typeName(m[name]))
			continue
		}
		vol := Volume{Name: name, AcceptNew: true, HighWaterPct: defaultHWM}
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
			default:
				r.warnings = append(r.warnings, fmt.Sprintf("%s: %s: unknown key, ignored", r.src.where(sub), sub))
			}
		}
		if _, ok := vm["path"]; !ok {
			r.fail(key+".path", "required")
		}
		out = append(out, vol)
	}
	return out
}

func (r *reader) globKeys(key, pattern string) []string {
	files, err := filepath.Glob(pattern)
	if err != nil {
		r.fail(key, "bad pattern %q: %v", pattern, err)
		return nil
	}
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			r.fail(key, "read %s: %v", f, err)
			continue
		}
		out = append(out, strings.TrimRight(string(data), "\r\n"))
	}
	return out
}

// defaultLockDir is the first of the old storage unit's candidates that
// exists, so old and new code on one host share lock files.
func defaultLockDir() string {
	for _, d := range []string{"/run/lock", "/var/lock", "/run", "/var/run", "/tmp"} {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return "/tmp"
}

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
	}{plain(c), c.APITimeout.String(), c.UpdateConfigInterval.String(), c.RestoreMaxLifetime.String()})
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
