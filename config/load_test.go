package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/internal/seedconfig"
)

// writeConfig creates dir/config.d with the given files and returns dir.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	cd := filepath.Join(dir, "config.d")
	if err := os.Mkdir(cd, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(cd, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// minimal is the body of the smallest a.json Load accepts.
const minimal = `"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}`

// loadWith loads config.d/a.json holding minimal and then extra, keys to
// add ("" for none).
func loadWith(t *testing.T, extra string) (*Config, error) {
	t.Helper()
	body := "{" + minimal
	if extra != "" {
		body += ", " + extra
	}
	return Load(writeConfig(t, map[string]string{"a.json": body + "}"}))
}

// wantErrContaining fails t unless err is nil for want "" and otherwise
// an error containing want.
func wantErrContaining(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("got %v, want no error", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("got %v, want an error containing %q", err, want)
	}
}

func TestLoadSeedConfig(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "") // as from a shell, not from a systemd unit
	dir := writeConfig(t, map[string]string{"config.json": seedconfig.README})
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("seed config: %v", err)
	}
	want := &Config{
		Name: "primary", Secret: "RANDOM SECRET", APIURL: "https://turku.example.com/v1",
		APIAuth: "STORAGE AUTH STRING", APITimeout: 30 * time.Second,
		VarDir: "/var/lib/turku-storage", SnapshotMode: "link-dest", Timezone: "UTC",
		AcceptNewHighWaterPct: 80,
		Volumes:               []Volume{{Name: "default", Path: "/media/backup/turku", AcceptNew: true, HighWaterPct: 80, MaxUsagePct: 95, MaxInodeUsagePct: 95}},
		MaxUsagePct:           95,
		MaxInodeUsagePct:      95,
		SSHPingHost:           "primary.turku.example.com", SSHPingPort: 22, SSHPingUser: "turku-ping",
		SSHListen: ":22", SSHHostKeyFiles: []string{"/var/lib/turku-storage/ssh_host_ed25519_key"},
		UpdateConfigInterval: 5 * time.Minute, MaxConcurrentBackups: 4, RsyncCommand: "rsync",
		CoordinatorListen: "127.0.0.1:8410", ControlSocket: "/var/lib/turku-storage/control.sock",
		SSHMaxStartups: MaxStartups{30, 30, 100}, SSHPerSourceMaxStartups: 10, RestoreMaxLifetime: 3 * time.Hour,
		SSHMaxConnectionsPerMachine: 4, SSHMaxSessionsPerMachine: 2, SSHSessionRequestTimeout: 5 * time.Second,
		TunnelPortRange: PortRange{49152, 65535}, ReportSpoolMaxCount: 10000, ReportSpoolMaxBytes: 256 << 20,
		OrphanWarnAfter: 14 * 24 * time.Hour,
		Web:             Web{WebMaxAge: 48 * time.Hour},
		Ignored:         []string{"config.d/config.json: authorized_keys_command: ignored: the embedded SSH server needs no authorized_keys"},
	}
	ignore := []string{"Dir", "Files", "Location", "LockDir", "Origins"}
	if diff := cmp.Diff(want, c, cmpIgnore(ignore...)); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
	if c.Location != time.UTC {
		t.Errorf("got location %v, want UTC", c.Location)
	}
	if c.LockDir == "" {
		t.Error("lock_dir has no default")
	}
}

func TestLoadMergeOrder(t *testing.T) {
	dir := writeConfig(t, map[string]string{
		"00-base.json": `{"name": "primary", "secret": "s", "api_url": "http://127.0.0.1:1/v1",
			"ssh_ping_port": 2222, "ssh_ping_host_keys_glob": "/nonexistent/*",
			"volumes": {"Backup-A": {"path": "/srv/a", "accept_new": false}, "b": {"path": "/srv/b"}},
			"preserve_hard_links": true}`,
		"10-override.yaml": "ssh_ping_port: 2022\nvolumes:\n  Backup-A:\n    accept_new_high_water_pct: 95\n  c:\n    path: /srv/c\ntimezone: Europe/Berlin\n",
		"20-later.yml":     "update_config_interval: 90\nsnapshot_mode: none\n",
		"README":           "not a config file",
	})
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.SSHPingPort != 2022 {
		t.Errorf("got ssh_ping_port %d, want 2022 (YAML after JSON wins)", c.SSHPingPort)
	}
	wantVols := []Volume{
		{Name: "Backup-A", Path: "/srv/a", AcceptNew: false, HighWaterPct: 95, MaxUsagePct: 95, MaxInodeUsagePct: 95},
		{Name: "b", Path: "/srv/b", AcceptNew: true, HighWaterPct: 80, MaxUsagePct: 95, MaxInodeUsagePct: 95},
		{Name: "c", Path: "/srv/c", AcceptNew: true, HighWaterPct: 80, MaxUsagePct: 95, MaxInodeUsagePct: 95},
	}
	if diff := cmp.Diff(wantVols, c.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if c.UpdateConfigInterval != 90*time.Second || c.SnapshotMode != "none" || !c.PreserveHardLinks {
		t.Errorf("got interval %v mode %q hardlinks %v", c.UpdateConfigInterval, c.SnapshotMode, c.PreserveHardLinks)
	}
	if c.Location.String() != "Europe/Berlin" {
		t.Errorf("got location %v", c.Location)
	}
	if c.SSHListen != ":2022" {
		t.Errorf("got ssh_listen %q, want :2022", c.SSHListen)
	}
	if diff := cmp.Diff([]string{"config.d/00-base.json", "config.d/10-override.yaml", "config.d/20-later.yml"}, c.Files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestLoadListsReplace(t *testing.T) {
	keys := t.TempDir()
	k1, k2 := filepath.Join(keys, "one"), filepath.Join(keys, "two")
	key1, key2 := writeHostKey(t, k1, false), writeHostKey(t, k2, true)
	dir := writeConfig(t, map[string]string{
		"00.json": `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}, "ssh_ping_host_keys": ["` + key1 + `", "` + key1 + `"], "ssh_host_key_files": ["` + k1 + `"]}`,
		"01.json": `{"ssh_ping_host_keys": ["` + key2 + `"], "ssh_host_key_files": ["` + k2 + `"]}`,
	})
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{key2}, c.SSHPingHostKeys); diff != "" {
		t.Errorf("host keys (-want +got):\n%s", diff)
	}
	if !c.EmbeddedCoordinator() {
		t.Error("no api_url: want the built-in coordinator")
	}
}

func TestLoadErrors(t *testing.T) {
	base := `"name": "n", "api_url": "https://api.example/v1", "volumes": {"v": {"path": "/v"}}`
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "missing secret",
			files: map[string]string{"10-main.json": "{" + base + "}"},
			want:  []string{"config.d: secret: required (not set in config.d/10-main.json)"},
		},
		{
			name: "volume without path",
			files: map[string]string{
				"00-main.json":    `{"name": "n", "secret": "s"}`,
				"10-volumes.yaml": "volumes:\n  default:\n    accept_new: true\n",
			},
			want: []string{"config.d/10-volumes.yaml: volumes.default.path: required"},
		},
		{
			name:  "wrong types",
			files: map[string]string{"a.json": `{` + base + `, "secret": "s", "ssh_ping_port": "22", "preserve_hard_links": "yes", "max_concurrent_backups": 0}`},
			want: []string{
				"config.d/a.json: preserve_hard_links: want true or false, got a string",
				"config.d/a.json: ssh_ping_port: want an integer, got a string",
				"config.d/a.json: max_concurrent_backups: 0 is out of range 1..1024",
			},
		},
		{
			name:  "bad values",
			files: map[string]string{"a.json": `{` + base + `, "secret": "s", "snapshot_mode": "btrfs", "timezone": "Mars/Olympus", "update_config_interval": "soon", "var_dir": "relative"}`},
			want: []string{
				`config.d/a.json: snapshot_mode: unknown mode "btrfs": want one of link-dest, none`,
				`config.d/a.json: timezone: unknown time zone "Mars/Olympus"`,
				`config.d/a.json: update_config_interval: want a duration like "5m" or a number of seconds, got "soon"`,
				`config.d/a.json: var_dir: want an absolute path, got "relative"`,
			},
		},
		{
			name:  "disk guard out of range",
			files: map[string]string{"a.json": `{"name": "n", "secret": "s", "max_usage_pct": 0, "volumes": {"v": {"path": "/v", "max_usage_pct": 101}}}`},
			want: []string{
				"config.d/a.json: max_usage_pct: 0 is out of range 1..100",
				"config.d/a.json: volumes.v.max_usage_pct: 101 is out of range 1..100",
			},
		},
		{
			name:  "inode guard out of range",
			files: map[string]string{"a.json": `{"name": "n", "secret": "s", "max_inode_usage_pct": 0, "volumes": {"v": {"path": "/v", "max_inode_usage_pct": 101}}}`},
			want: []string{
				"config.d/a.json: max_inode_usage_pct: 0 is out of range 1..100",
				"config.d/a.json: volumes.v.max_inode_usage_pct: 101 is out of range 1..100",
			},
		},
		{
			name:  "bad host key",
			files: map[string]string{"a.json": `{` + base + `, "secret": "s", "ssh_ping_host_keys": ["ssh-ed25519 garbage"]}`},
			want:  []string{"config.d/a.json: ssh_ping_host_keys[0]: not a public key in authorized_keys form"},
		},
		{
			name:  "volumes not a mapping",
			files: map[string]string{"a.json": `{"name": "n", "secret": "s", "volumes": ["/v"]}`},
			want:  []string{"config.d/a.json: volumes: want a mapping of volume name to settings, got a list"},
		},
		{
			name: "typos of known keys",
			files: map[string]string{
				"a.json": `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v", "acept_new": false}}}`,
				"b.yaml": "ssh_lisen: 127.0.0.1:2222\nSnapshot_Mode: none\n",
			},
			want: []string{
				"config.d/b.yaml: Snapshot_Mode: unknown key; did you mean snapshot_mode?",
				"config.d/b.yaml: ssh_lisen: unknown key; did you mean ssh_listen?",
				"config.d/a.json: volumes.v.acept_new: unknown key; did you mean volumes.v.accept_new?",
			},
		},
		{
			name: "a mapping replaced by a later file",
			files: map[string]string{
				"a.json": `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}}`,
				"b.json": `{"volumes": "/v"}`,
			},
			want: []string{"config.d/b.json: volumes: want a mapping, as config.d/a.json set it, got a string"},
		},
		{
			name: "volume names that differ only in case",
			files: map[string]string{
				"a.json": `{"name": "n", "secret": "s", "volumes": {"Backup": {"path": "/v"}}}`,
				"b.json": `{"volumes": {"backup": {"path": "/w"}}}`,
			},
			want: []string{`config.d/b.json: volumes.backup: the volume names "Backup" and "backup" differ only in case`},
		},
		{
			name:  "bad control_socket",
			files: map[string]string{"a.json": `{"name": "n", "secret": "s", "control_socket": "run/control.sock", "volumes": {"v": {"path": "/v"}}}`},
			want:  []string{`config.d/a.json: control_socket: want an absolute path, got "run/control.sock"`},
		},
		{
			name:  "control_socket too long",
			files: map[string]string{"a.json": `{"name": "n", "secret": "s", "control_socket": "/` + strings.Repeat("d", 120) + `", "volumes": {"v": {"path": "/v"}}}`},
			want:  []string{`config.d/a.json: control_socket: path is 121 bytes, longer than a Unix socket address allows (107)`},
		},
		{
			name:  "bad api_url",
			files: map[string]string{"a.json": `{"name": "n", "secret": "s", "api_url": "turku.example.com", "volumes": {"v": {"path": "/v"}}}`},
			want:  []string{`config.d/a.json: api_url: want an http:// or https:// URL, got "turku.example.com"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.files))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if len(ce.Problems) != len(tt.want) {
				t.Errorf("got %d problems %q, want %d", len(ce.Problems), ce.Problems, len(tt.want))
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{name: "bad json", files: map[string]string{"a.json": `{"name": `}, want: "config.d/a.json: invalid JSON"},
		{name: "bad yaml", files: map[string]string{"a.yaml": "name: [unclosed"}, want: "config.d/a.yaml: invalid YAML"},
		{name: "not a mapping", files: map[string]string{"a.json": `["x"]`}, want: "config.d/a.json: top level must be a mapping, got a list"},
		{name: "no files", files: map[string]string{"notes.txt": "x"}, want: "no *.json, *.yaml or *.yml files (config.d/notes.txt: not read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.files))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent")); err == nil || !strings.Contains(err.Error(), "read configuration directory") {
		t.Errorf("absent dir: got %v", err)
	}
}

// TestLoadWarnings: unknown keys are warned about and keys the embedded
// server has no use for are noted as ignored. A file of config.d that is
// not read for its extension is named: a warning, or only a note for
// *.example (the package ships one); hidden files are passed over silently.
func TestLoadWarnings(t *testing.T) {
	tests := []struct {
		name              string
		files             map[string]string
		warnings, ignored []string
	}{
		{
			name: "keys",
			files: map[string]string{
				"a.json": `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v", "mount_opts": "x"}}, "frobnicate": 1, "authorized_keys_file": "/x"}`,
			},
			warnings: []string{
				"config.d/a.json: frobnicate: unknown key, ignored",
				"config.d/a.json: volumes.v.mount_opts: unknown key, ignored",
			},
			ignored: []string{"config.d/a.json: authorized_keys_file: ignored: the embedded SSH server needs no authorized_keys"},
		},
		{
			name: "skipped files",
			files: map[string]string{
				"10-storage.json":          `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}}`,
				"10-storage.yaml.example":  "name: x\n",
				"20-volumes.yml.dpkg-dist": "name: y\n",
				"30-tuning.conf":           "max_concurrent_backups: 2\n",
				".10-storage.json.swp":     "x",
			},
			warnings: []string{
				"config.d/20-volumes.yml.dpkg-dist: not read: only *.json, *.yaml and *.yml files are",
				"config.d/30-tuning.conf: not read: only *.json, *.yaml and *.yml files are",
			},
			ignored: []string{"config.d/10-storage.yaml.example: not read: only *.json, *.yaml and *.yml files are"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeConfig(t, tt.files))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.warnings, c.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.ignored, c.Ignored); diff != "" {
				t.Errorf("ignored (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadEnvironment: TURKU_STORAGE_KEY overrides key, read as the
// key's type; a bad value names the variable and the key.
func TestLoadEnvironment(t *testing.T) {
	dir := writeConfig(t, map[string]string{
		"a.json": `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}, "ssh_listen": "0.0.0.0:22", "ssh_ping_port": 22}`,
	})
	t.Setenv("TURKU_STORAGE_SSH_LISTEN", "127.0.0.1:2222")
	t.Setenv("TURKU_STORAGE_SSH_PING_PORT", "2222")
	t.Setenv("TURKU_STORAGE_PRESERVE_HARD_LINKS", "true")
	t.Setenv("TURKU_STORAGE_API_TIMEOUT", "7")
	t.Setenv("TURKU_STORAGE_UPDATE_CONFIG_INTERVAL", "90s")
	t.Setenv("TURKU_STORAGE_SSH_HOST_KEY_FILES", "/k/one, /k/two")
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.SSHListen != "127.0.0.1:2222" || c.SSHPingPort != 2222 || !c.PreserveHardLinks || c.APITimeout != 7*time.Second || c.UpdateConfigInterval != 90*time.Second {
		t.Errorf("got ssh_listen %q, ssh_ping_port %d, preserve_hard_links %v, api_timeout %v, update_config_interval %v",
			c.SSHListen, c.SSHPingPort, c.PreserveHardLinks, c.APITimeout, c.UpdateConfigInterval)
	}
	if diff := cmp.Diff([]string{"/k/one", "/k/two"}, c.SSHHostKeyFiles); diff != "" {
		t.Errorf("ssh_host_key_files (-want +got):\n%s", diff)
	}
	if got := c.Origins["ssh_listen"]; got != "environment TURKU_STORAGE_SSH_LISTEN" {
		t.Errorf("origin of ssh_listen %q", got)
	}
	if got := c.Origins["name"]; got != "config.d/a.json" {
		t.Errorf("origin of name %q", got)
	}

	t.Setenv("TURKU_STORAGE_FROBNICATE", "1")
	c, err = Load(dir)
	if err != nil || !slices.Contains(c.Warnings, "environment TURKU_STORAGE_FROBNICATE: names no configuration key, ignored") {
		t.Errorf("unknown variable: got %v, warnings %q", err, c.Warnings)
	}
	t.Setenv("TURKU_STORAGE_SSH_LISEN", "127.0.0.1:1")
	t.Setenv("TURKU_STORAGE_MAX_CONCURRENT_BACKUPS", "lots")
	t.Setenv("TURKU_STORAGE_PRESERVE_HARD_LINKS", "yes please")
	_, err = Load(dir)
	want := []string{
		`environment TURKU_STORAGE_PRESERVE_HARD_LINKS: preserve_hard_links: want true or false, got "yes please"`,
		`environment TURKU_STORAGE_MAX_CONCURRENT_BACKUPS: max_concurrent_backups: want an integer, got "lots"`,
		"environment TURKU_STORAGE_SSH_LISEN: unknown variable; did you mean TURKU_STORAGE_SSH_LISTEN?",
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("got %v, want it to contain %q", err, w)
		}
	}
}

// TestLoadHighWaterZero: 0 is a high-water mark like any other, for the
// default and for one volume.
func TestLoadHighWaterZero(t *testing.T) {
	c, err := Load(writeConfig(t, map[string]string{
		"a.json": `{"name": "n", "secret": "s", "accept_new_high_water_pct": 0, "volumes": {"a": {"path": "/a"}, "b": {"path": "/b", "accept_new_high_water_pct": 50}}}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AcceptNewHighWaterPct != 0 || c.Volumes[0].HighWaterPct != 0 || c.Volumes[1].HighWaterPct != 50 {
		t.Errorf("got default %d, volumes %+v; want 0, a at 0, b at 50", c.AcceptNewHighWaterPct, c.Volumes)
	}
}

func TestRedacted(t *testing.T) {
	c := &Config{Secret: "s", APIAuthSecret: "a", Name: "n"}
	r := c.Redacted()
	if r.Secret != "********" || r.APIAuthSecret != "********" || r.APIAuth != "" || r.Name != "n" {
		t.Errorf("got %+v", r)
	}
	if c.Secret != "s" {
		t.Error("Redacted changed the original")
	}
}

// TestDurationRoundTrip: what "config check" prints must read back as the
// same configuration; durations used to print as nanoseconds, which
// config.d reads as seconds.
func TestDurationRoundTrip(t *testing.T) {
	const base = `"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}`
	c, err := Load(writeConfig(t, map[string]string{"a.json": `{` + base + `, "api_timeout": 7, "update_config_interval": "90s"}`}))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	var printed map[string]any
	if err := json.Unmarshal(data, &printed); err != nil {
		t.Fatal(err)
	}
	if printed["api_timeout"] != "7s" || printed["update_config_interval"] != "1m30s" {
		t.Errorf("printed api_timeout %v, update_config_interval %v; want \"7s\", \"1m30s\"", printed["api_timeout"], printed["update_config_interval"])
	}
	again, err := Load(writeConfig(t, map[string]string{"a.json": `{` + base + `, "api_timeout": ` + string(mustJSON(t, printed["api_timeout"])) +
		`, "update_config_interval": ` + string(mustJSON(t, printed["update_config_interval"])) + `}`}))
	if err != nil {
		t.Fatalf("printed durations do not load: %v", err)
	}
	if again.APITimeout != c.APITimeout || again.UpdateConfigInterval != c.UpdateConfigInterval {
		t.Errorf("round trip: got %v, %v; want %v, %v", again.APITimeout, again.UpdateConfigInterval, c.APITimeout, c.UpdateConfigInterval)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDurationOverflow: a number of seconds beyond time.Duration used to
// wrap around, to a negative duration or to a wrong positive one.
func TestDurationOverflow(t *testing.T) {
	const base = `"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}`
	for _, v := range []string{"20000000000", "30000000000", "2e10", "9223372037"} {
		_, err := Load(writeConfig(t, map[string]string{"a.json": `{` + base + `, "api_timeout": ` + v + `}`}))
		if err == nil || !strings.Contains(err.Error(), "api_timeout: ") || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("api_timeout %s: got %v, want an out of range error", v, err)
		}
	}
	c, err := Load(writeConfig(t, map[string]string{"a.json": `{` + base + `, "api_timeout": 9223372036}`}))
	if err != nil || c.APITimeout != 9223372036*time.Second {
		t.Errorf("largest whole number of seconds: got %v, %v", c, err)
	}
}

// max_usage_pct: the top-level value is every volume's default, a
// volume's own wins; metrics_listen is read as given.
func TestLoadDiskGuardAndMetrics(t *testing.T) {
	c := loadPerVolume(t, "max_usage_pct", 98, `"metrics_listen": "127.0.0.1:9410",`, func(v Volume) int { return v.MaxUsagePct })
	if c.MaxInodeUsagePct != 95 {
		t.Errorf("max_inode_usage_pct default %d, want 95", c.MaxInodeUsagePct)
	}
	if c.MetricsListen != "127.0.0.1:9410" {
		t.Errorf("metrics_listen %q", c.MetricsListen)
	}
}

// FuzzLoad: whatever a config.d file holds, Load returns a configuration
// or an error naming the file, and never panics. Seeded from the tables
// above.
func FuzzLoad(f *testing.F) {
	f.Add(seedconfig.README, true)
	f.Add(`{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v", "acept_new": false}}}`, true)
	f.Add("ssh_lisen: 127.0.0.1:2222\nSnapshot_Mode: none\nvolumes:\n  default:\n    accept_new: true\n", false)
	f.Add(`{"volumes": ["/v"], "api_timeout": 2e10, "ssh_ping_port": "22"}`, true)
	f.Fuzz(func(t *testing.T, body string, isJSON bool) {
		name := "a.yaml"
		if isJSON {
			name = "a.json"
		}
		base := `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}}`
		_, err := Load(writeConfig(t, map[string]string{"00-base.json": base, name: body}))
		var ce *Error
		if err != nil && !errors.As(err, &ce) && !strings.Contains(err.Error(), "config.d/"+name) {
			t.Fatalf("error names neither a key nor the file: %v", err)
		}
		if ce != nil {
			for _, p := range ce.Problems {
				if !strings.HasPrefix(p, "config.d") && !strings.HasPrefix(p, "environment ") {
					t.Fatalf("problem names no file: %q", p)
				}
			}
		}
	})
}

// loadPerVolume loads a configuration that sets key to 90 at the top
// level and to own for volume b (extra adds top-level settings), and
// checks that volume a takes the top-level value and b its own: field
// reads the setting of a loaded volume.
func loadPerVolume(t *testing.T, key string, own int, extra string, field func(Volume) int) *Config {
	t.Helper()
	c, err := Load(writeConfig(t, map[string]string{
		"a.json": fmt.Sprintf(`{"name": "n", "secret": "s", %q: 90, %s
			"volumes": {"a": {"path": "/a"}, "b": {"path": "/b", %q: %d}}}`, key, extra, key, own),
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, v := range c.Volumes {
		got[v.Name] = field(v)
	}
	if diff := cmp.Diff(map[string]int{"a": 90, "b": own}, got); diff != "" {
		t.Errorf("%s by volume (-want +got):\n%s", key, diff)
	}
	return c
}

// max_inode_usage_pct: like max_usage_pct, the top-level value is every
// volume's default and a volume's own wins.
func TestLoadInodeGuard(t *testing.T) {
	loadPerVolume(t, "max_inode_usage_pct", 99, "", func(v Volume) int { return v.MaxInodeUsagePct })
}

// TestControlSocketDefault: without control_socket, the socket is the
// instance's own: in systemd's RUNTIME_DIRECTORY when serve runs in a
// unit (linked from var_dir, where a shell finds it), else in var_dir.
func TestControlSocketDefault(t *testing.T) {
	tests := []struct {
		name, runtimeDir, set string
		want, wantLink        string
	}{
		{name: "from a shell", want: "/srv/a/var/control.sock"},
		{name: "in a unit", runtimeDir: "/run/turku-storage-a", want: "/run/turku-storage-a/control.sock", wantLink: "/srv/a/var/control.sock"},
		{name: "several runtime directories", runtimeDir: "/run/x:/run/y", want: "/run/x/control.sock", wantLink: "/srv/a/var/control.sock"},
		{name: "relative runtime directory ignored", runtimeDir: "run/x", want: "/srv/a/var/control.sock"},
		{name: "configured", runtimeDir: "/run/x", set: "/srv/a/ctl.sock", want: "/srv/a/ctl.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RUNTIME_DIRECTORY", tt.runtimeDir)
			extra := ""
			if tt.set != "" {
				extra = `, "control_socket": "` + tt.set + `"`
			}
			c, err := Load(writeConfig(t, map[string]string{"a.json": `{"name": "n", "secret": "s", "var_dir": "/srv/a/var", "volumes": {"v": {"path": "/v"}}` + extra + `}`}))
			if err != nil {
				t.Fatal(err)
			}
			if c.ControlSocket != tt.want || c.ControlSocketLink != tt.wantLink {
				t.Errorf("got socket %q link %q, want %q and %q", c.ControlSocket, c.ControlSocketLink, tt.want, tt.wantLink)
			}
		})
	}
}
