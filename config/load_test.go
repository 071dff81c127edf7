package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// seedConfig is the example from the original README, unchanged.
const seedConfig = `{
    "api_auth": "STORAGE AUTH STRING",
    "api_url": "https://turku.example.com/v1",
    "authorized_keys_command": "sudo /usr/local/bin/turku-storage-ping",
    "name": "primary",
    "secret": "RANDOM SECRET",
    "snapshot_mode": "link-dest",
    "ssh_ping_host": "primary.turku.example.com",
    "ssh_ping_port": 22,
    "ssh_ping_user": "turku-ping",
    "volumes": {
        "default": {
            "path": "/media/backup/turku"
        }
    }
}
`

func TestLoadSeedConfig(t *testing.T) {
	dir := writeConfig(t, map[string]string{"config.json": seedConfig})
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("seed config: %v", err)
	}
	want := &Config{
		Name: "primary", Secret: "RANDOM SECRET", APIURL: "https://turku.example.com/v1",
		APIAuth: "STORAGE AUTH STRING", APITimeout: 30 * time.Second,
		VarDir: "/var/lib/turku-storage", SnapshotMode: "link-dest", Timezone: "UTC",
		AcceptNewHighWaterPct: 80,
		Volumes:               []Volume{{Name: "default", Path: "/media/backup/turku", AcceptNew: true, HighWaterPct: 80}},
		SSHPingHost:           "primary.turku.example.com", SSHPingPort: 22, SSHPingUser: "turku-ping",
		SSHListen: ":22", SSHHostKeyFiles: []string{"/var/lib/turku-storage/ssh_host_ed25519_key"},
		UpdateConfigInterval: 5 * time.Minute, MaxConcurrentBackups: 4, RsyncCommand: "rsync",
		CoordinatorListen: "127.0.0.1:8410",
		SSHMaxStartups:    MaxStartups{30, 30, 100}, SSHPerSourceMaxStartups: 10, RestoreMaxLifetime: 3 * time.Hour,
		Warnings: []string{"config.d/config.json: authorized_keys_command: ignored: the embedded SSH server needs no authorized_keys"},
	}
	ignore := []string{"Dir", "Files", "Location", "LockDir"}
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
		{Name: "Backup-A", Path: "/srv/a", AcceptNew: false, HighWaterPct: 95},
		{Name: "b", Path: "/srv/b", AcceptNew: true, HighWaterPct: 80},
		{Name: "c", Path: "/srv/c", AcceptNew: true, HighWaterPct: 80},
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
	key1 := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl one"
	key2 := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEbOxo9SUaS1/ZYsxCpYP9A8SmMRe1OkDTVYbfz4Sl5q two"
	dir := writeConfig(t, map[string]string{
		"00.json": `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}, "ssh_ping_host_keys": ["` + key1 + `", "` + key1 + `"]}`,
		"01.json": `{"ssh_ping_host_keys": ["` + key2 + `"]}`,
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
		{name: "no files", files: map[string]string{"notes.txt": "x"}, want: "no *.json, *.yaml or *.yml files"},
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

func TestLoadWarnings(t *testing.T) {
	dir := writeConfig(t, map[string]string{
		"a.json": `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v", "mount_opts": "x"}}, "frobnicate": 1, "authorized_keys_file": "/x"}`,
	})
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"config.d/a.json: authorized_keys_file: ignored: the embedded SSH server needs no authorized_keys",
		"config.d/a.json: frobnicate: unknown key, ignored",
		"config.d/a.json: volumes.v.mount_opts: unknown key, ignored",
	}
	if diff := cmp.Diff(want, c.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
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
