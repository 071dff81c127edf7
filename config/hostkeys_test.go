package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

// writeHostKey writes an OpenSSH private key at path (0600) and its
// public half at path.pub, as ssh-keygen does, and returns the public half
// in authorized_keys form.
func writeHostKey(t *testing.T, path string, ecdsaKey bool) string {
	t.Helper()
	var priv any
	if ecdsaKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv = k
	} else {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv = k
	}
	block, err := ssh.MarshalPrivateKey(priv, "root@oldhost")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(pem.EncodeToMemory(block))
	if err != nil {
		t.Fatal(err)
	}
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
	if err := os.WriteFile(path+".pub", []byte(pub+" root@oldhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return pub
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	return string(mustJSON(t, v))
}

// TestHostKeysFollowTheOldConfig: the keys an old configuration
// advertises are the keys served when their private halves are readable,
// and a configuration that would advertise keys it does not serve is
// refused, naming both sets and both ways out.
func TestHostKeysFollowTheOldConfig(t *testing.T) {
	old := t.TempDir() // the old sshd's /etc/ssh
	edPub := writeHostKey(t, filepath.Join(old, "ssh_host_ed25519_key"), false)
	ecPub := writeHostKey(t, filepath.Join(old, "ssh_host_ecdsa_key"), true)
	pubOnly := t.TempDir() // public halves without their private keys
	for _, n := range []string{"ssh_host_ed25519_key.pub", "ssh_host_ecdsa_key.pub"} {
		data, _ := os.ReadFile(filepath.Join(old, n))
		os.WriteFile(filepath.Join(pubOnly, n), data, 0o644)
	}
	other := filepath.Join(t.TempDir(), "other_key")
	writeHostKey(t, other, false)
	openKey := filepath.Join(t.TempDir(), "group_readable_key")
	writeHostKey(t, openKey, false)
	os.Chmod(openKey, 0o640)
	varDir := t.TempDir()
	base := `"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}, "var_dir": ` + jsonString(t, varDir)
	sshdGlob := filepath.Join(old, "ssh_host_*_key")

	tests := []struct {
		name      string
		extra     string
		wantFiles []string // served when it loads
		wantErr   []string // else: in the one problem
	}{
		{
			name:      "glob: private halves beside the public ones are served",
			extra:     `"ssh_ping_host_keys_glob": ` + jsonString(t, filepath.Join(old, "ssh_host_*_key.pub")),
			wantFiles: []string{filepath.Join(old, "ssh_host_ecdsa_key"), filepath.Join(old, "ssh_host_ed25519_key")},
		},
		{
			name:      "list: private halves found among the sshd keys",
			extra:     `"ssh_ping_host_keys": [` + jsonString(t, edPub) + `]`,
			wantFiles: []string{filepath.Join(old, "ssh_host_ed25519_key")},
		},
		{
			name:      "explicit files that match",
			extra:     `"ssh_ping_host_keys": [` + jsonString(t, edPub) + `, ` + jsonString(t, ecPub) + `], "ssh_host_key_files": ` + jsonString(t, []string{filepath.Join(old, "ssh_host_ed25519_key"), filepath.Join(old, "ssh_host_ecdsa_key")}),
			wantFiles: []string{filepath.Join(old, "ssh_host_ed25519_key"), filepath.Join(old, "ssh_host_ecdsa_key")},
		},
		{
			name:      "neither: the unit's own key, advertised as served",
			wantFiles: []string{filepath.Join(varDir, "ssh_host_ed25519_key")},
		},
		{
			name:  "glob: private halves missing",
			extra: `"ssh_ping_host_keys_glob": ` + jsonString(t, filepath.Join(pubOnly, "*.pub")),
			wantErr: []string{
				"config.d/a.json: ssh_ping_host_keys_glob: advertises host keys this server would not serve",
				"advertised (ssh_ping_host_keys_glob):",
				"ssh-ed25519 SHA256:",
				"(" + filepath.Join(pubOnly, "ssh_host_ed25519_key.pub") + ")",
				filepath.Join(pubOnly, "ssh_host_ed25519_key") + ": no such file or directory",
				filepath.Join(varDir, "ssh_host_ed25519_key") + ": does not exist: serve would generate a new key",
				"set ssh_host_key_files to their private halves, readable by this user (e.g. " + filepath.Join(pubOnly, "ssh_host_ecdsa_key") + ")",
				"or advertise the keys this server serves: remove ssh_ping_host_keys_glob",
			},
		},
		{
			name:  "explicit files that do not match",
			extra: `"ssh_ping_host_keys": [` + jsonString(t, edPub) + `], "ssh_host_key_files": [` + jsonString(t, other) + `]`,
			wantErr: []string{
				"config.d/a.json: ssh_ping_host_keys: advertises host keys this server would not serve",
				"served (ssh_host_key_files):",
				"(" + other + ")",
				"remove ssh_ping_host_keys (",
			},
		},
		{
			name:    "explicit file others may read",
			extra:   `"ssh_ping_host_keys": [` + jsonString(t, strings.TrimSpace(mustReadPub(t, openKey))) + `], "ssh_host_key_files": [` + jsonString(t, openKey) + `]`,
			wantErr: []string{openKey + ": permissions 0640 are too open"},
		},
		{
			name:    "list: no private half anywhere",
			extra:   `"ssh_ping_host_keys": [` + jsonString(t, strings.TrimSpace(mustReadPub(t, other))) + `]`,
			wantErr: []string{"ssh_ping_host_keys: advertises host keys this server would not serve", "(ssh_ping_host_keys[0])"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := "{" + base
			if tt.extra != "" {
				body += ", " + tt.extra
			}
			c, err := load(writeConfig(t, map[string]string{"a.json": body + "}"}), sshdGlob)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.wantFiles, c.SSHHostKeyFiles); diff != "" {
					t.Errorf("served key files (-want +got):\n%s", diff)
				}
				return
			}
			ce, ok := err.(*Error)
			if !ok || len(ce.Problems) != 1 {
				t.Fatalf("got %v, want one problem", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(ce.Problems[0], w) {
					t.Errorf("problem\n%s\nlacks %q", ce.Problems[0], w)
				}
			}
		})
	}
}

func mustReadPub(t *testing.T, priv string) string {
	t.Helper()
	data, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(strings.TrimSpace(string(data)), " root@oldhost")
}

// TestLoadBehindOpenSSH: in forced-command mode sshd serves the host keys,
// so keys whose private halves this user cannot read are no reason to
// refuse the configuration there; Load still refuses it.
func TestLoadBehindOpenSSH(t *testing.T) {
	keys := t.TempDir()
	writeHostKey(t, filepath.Join(keys, "ssh_host_ed25519_key"), false)
	os.Remove(filepath.Join(keys, "ssh_host_ed25519_key"))
	dir := writeConfig(t, map[string]string{"a.json": `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}, "var_dir": ` +
		jsonString(t, t.TempDir()) + `, "ssh_ping_host_keys_glob": ` + jsonString(t, filepath.Join(keys, "*.pub")) + `}`})
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "advertises host keys this server would not serve") {
		t.Errorf("Load: got %v, want the host key refusal", err)
	}
	c, err := LoadBehindOpenSSH(dir)
	if err != nil {
		t.Fatalf("LoadBehindOpenSSH: %v", err)
	}
	if len(c.SSHPingHostKeys) != 1 {
		t.Errorf("advertised keys %q, want the one .pub", c.SSHPingHostKeys)
	}
}
