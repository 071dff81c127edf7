package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
	"github.com/turku-backup/turku-storage/internal/seedconfig"
)

// oldSite is a storage unit migrated from the Python implementation: its
// config.d as it was (the README's example, plus ssh_ping_host_keys_glob
// naming the host keys its sshd served), and a second file with what the
// test needs to stay in its temporary directories and on loopback.
type oldSite struct {
	*site
	sshdKeys string // the old sshd's key directory (/etc/ssh)
}

func newOldSite(t *testing.T, api *apitest.Server) *oldSite {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed")
	}
	s := &oldSite{site: newSite(t, nil), sshdKeys: t.TempDir()}
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", typ, "-N", "", "-C", "root@oldhost",
			"-f", filepath.Join(s.sshdKeys, "ssh_host_"+typ+"_key")).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen -t %s: %v\n%s", typ, err, out)
		}
	}
	cfg := strings.NewReplacer(
		`"https://turku.example.com/v1"`, mustJSONString(t, api.BaseURL()),
		`"/media/backup/turku"`, mustJSONString(t, s.volume),
	).Replace(seedconfig.README)
	cfg = strings.Replace(cfg, `"volumes"`, `"ssh_ping_host_keys_glob": `+mustJSONString(t, filepath.Join(s.sshdKeys, "ssh_host_*_key.pub"))+",\n    \"volumes\"", 1)
	local, err := json.Marshal(map[string]any{
		"var_dir": s.varDir, "lock_dir": s.lockDir,
		"ssh_listen": "127.0.0.1:0", "coordinator_listen": "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	cd := filepath.Join(s.dir, "config.d")
	os.Remove(filepath.Join(cd, "10-main.json"))
	for name, body := range map[string]string{"config.json": cfg, "zz-test-local.json": string(local)} {
		if err := os.WriteFile(filepath.Join(cd, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func mustJSONString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// oldKnownHosts are the public host keys as the old sshd's .pub files hold
// them: what turku-api handed agents before the migration.
func (s *oldSite) oldKnownHosts(t *testing.T) []string {
	t.Helper()
	var keys []string
	for _, typ := range []string{"ecdsa", "ed25519", "rsa"} {
		data, err := os.ReadFile(filepath.Join(s.sshdKeys, "ssh_host_"+typ+"_key.pub"))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, strings.TrimSpace(string(data)))
	}
	return keys
}

// TestMigrationKeepsHostKeys follows docs/operations.md "Migrating from the
// Python turku-storage" with the old config.d unchanged: the unit serves
// the old sshd's host keys, so an agent whose known_hosts holds the old
// line (the real OpenSSH client, as turku-agent runs it) backs up without
// any change on its side.
func TestMigrationKeepsHostKeys(t *testing.T) {
	api := apitest.New()
	t.Cleanup(api.Close)
	s := newOldSite(t, api)
	ctx := context.Background()

	r := run(t, ctx, nil, "-c", s.dir, "config", "check")
	if r.code != 0 {
		t.Fatalf("config check of the old config.d: exit %d", r.code)
	}
	var printed struct {
		Files []string `json:"ssh_host_key_files"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &printed); err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{
		filepath.Join(s.sshdKeys, "ssh_host_ecdsa_key"),
		filepath.Join(s.sshdKeys, "ssh_host_ed25519_key"),
		filepath.Join(s.sshdKeys, "ssh_host_rsa_key"),
	}
	if strings.Join(printed.Files, " ") != strings.Join(wantFiles, " ") {
		t.Errorf("config check: ssh_host_key_files %q, want the old sshd's keys %q", printed.Files, wantFiles)
	}
	if !strings.Contains(r.stderr, "authorized_keys_command: ignored") {
		t.Errorf("config check does not name authorized_keys_command as ignored: %q", r.stderr)
	}

	// The old registration is kept: the advertised keys are the old ones,
	// and no new key is generated.
	old := s.oldKnownHosts(t)
	api.AddStorage("primary", "RANDOM SECRET")
	if r := run(t, ctx, nil, "-c", s.dir, "update-config"); r.code != 0 {
		t.Fatalf("update-config: exit %d", r.code)
	}
	reqs := api.Requests("storage_update_config")
	var advertised []string
	for _, k := range reqs[len(reqs)-1].Body["storage"].(map[string]any)["ssh_ping_host_keys"].([]any) {
		advertised = append(advertised, k.(string))
	}
	if strings.Join(advertised, "\n") != strings.Join(old, "\n") {
		t.Errorf("advertised host keys\n%s\nwant the old sshd's\n%s", strings.Join(advertised, "\n"), strings.Join(old, "\n"))
	}
	if _, err := os.Stat(filepath.Join(s.varDir, "ssh_host_ed25519_key")); !os.IsNotExist(err) {
		t.Errorf("a new host key was generated: %v", err)
	}

	a := newAgent(t, api, machineUUID, "web1", map[string]string{"hosts": "127.0.0.1 localhost\n"})
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc", Retention: "last 5 snapshots"})
	d := startServe(t, s.site)
	// The agent writes every advertised key into its known_hosts, as
	// "HOST KEY" lines: the old lines, since turku-api had them.
	res := a.ping(t, d, old).Wait(t, waitLong)
	if res.ExitCode != 0 || strings.Contains(res.Stderr, "Host key verification failed") {
		t.Fatalf("agent holding the old known_hosts lines: ssh exit %d", res.ExitCode)
	}
	d.log.WaitFor(t, `msg="report delivered"`, 1, waitLong) // in the background
	reports := api.Reports()
	if len(reports) != 1 || !reports[0].Success {
		t.Fatalf("reports %+v, want one success", reports)
	}
	if got, err := os.ReadFile(filepath.Join(s.volume, machineUUID, "etc.snapshots", reports[0].Snapshot, "hosts")); err != nil || string(got) != "127.0.0.1 localhost\n" {
		t.Errorf("snapshot content %q, %v", got, err)
	}
	if strings.Contains(d.log.String(), "receiving our host key") {
		t.Errorf("host key warning logged for agents that trust the key")
	}
}

// TestMigrationRefusesUnservedKeys: when the old config names host keys
// whose private halves this unit cannot read, config check and serve fail,
// naming both sets and the two ways out, instead of advertising keys no
// agent can verify; an agent still holding an old key is logged at WARN.
func TestMigrationRefusesUnservedKeys(t *testing.T) {
	api := apitest.New()
	t.Cleanup(api.Close)
	s := newOldSite(t, api)
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		if err := os.Remove(filepath.Join(s.sshdKeys, "ssh_host_"+typ+"_key")); err != nil {
			t.Fatal(err)
		}
	}
	wants := []string{
		"config.d/config.json: ssh_ping_host_keys_glob: advertises host keys this server would not serve",
		"advertised (ssh_ping_host_keys_glob):",
		filepath.Join(s.sshdKeys, "ssh_host_ed25519_key.pub"),
		filepath.Join(s.varDir, "ssh_host_ed25519_key") + ": does not exist: serve would generate a new key",
		"set ssh_host_key_files to their private halves",
		"remove ssh_ping_host_keys_glob",
	}
	for _, args := range [][]string{{"config", "check"}, {"serve"}} {
		r := run(t, context.Background(), nil, append([]string{"-c", s.dir}, args...)...)
		if r.code != 1 {
			t.Fatalf("%s: exit %d, want 1", args[0], r.code)
		}
		for _, w := range wants {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr lacks %q", args[0], w)
			}
		}
	}
	if reqs := api.Requests("storage_update_config"); len(reqs) != 0 {
		t.Errorf("%d registrations sent with keys that are not served", len(reqs))
	}

	// The first way out: advertise what is served. An agent still holding
	// the old line (turku-api not yet told) is refused by its ssh, which
	// serve now names at WARN with the agent's address.
	cd := filepath.Join(s.dir, "config.d")
	data, _ := os.ReadFile(filepath.Join(cd, "config.json"))
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	delete(cfg, "ssh_ping_host_keys_glob")
	data, _ = json.Marshal(cfg)
	os.WriteFile(filepath.Join(cd, "config.json"), data, 0o644)
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"f": "1"})
	api.AddStorage("primary", "RANDOM SECRET")
	d := startServe(t, s.site)
	res := a.ping(t, d, s.oldKnownHosts(t)).Wait(t, waitLong)
	if res.ExitCode != 255 || !strings.Contains(res.Stderr, "Host key verification failed") {
		t.Fatalf("agent with the old key: exit %d, want 255 Host key verification failed", res.ExitCode)
	}
	d.log.WaitFor(t, "receiving our host key", 1, waitLong)
	for _, l := range strings.Split(d.log.String(), "\n") {
		if strings.Contains(l, "receiving our host key") && (!strings.Contains(l, "level=WARN") || !strings.Contains(l, "remote=127.0.0.1:")) {
			t.Errorf("host key warning %q: want WARN with the agent's address", l)
		}
	}
}
