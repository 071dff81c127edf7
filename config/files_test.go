package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/turku-backup/turku-storage/internal/testcert"
)

func writeFile(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// TestLoadFiles: the files serve opens at start are checked as serve
// would use them.
func TestLoadFiles(t *testing.T) {
	files := t.TempDir()
	cert, key, _ := testcert.Write(t, files)
	other, _, _ := testcert.Write(t, t.TempDir())
	garbage := filepath.Join(files, "garbage")
	writeFile(t, garbage, "not PEM\n", 0o600)
	open := filepath.Join(files, "open_key")
	writeHostKey(t, open, false)
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(files, "good_key")
	writeHostKey(t, good, false)
	absent := filepath.Join(files, "absent_key")

	tests := []struct {
		name  string
		extra string
		want  []string // every problem, exactly; none: it loads
	}{
		{"log_file forms", `"log_file": "/var/log/turku-storage.log"`, nil},
		{"log_file relative", `"log_file": "turku-storage.log"`,
			[]string{`config.d/a.json: log_file: want systemd, syslog or an absolute path, got "turku-storage.log"`}},
		{"log_file journald", `"log_file": "journald"`,
			[]string{`config.d/a.json: log_file: want systemd, syslog or an absolute path, got "journald"`}},
		{"api_ca_file", `"api_url": "https://api.example/v1", "api_ca_file": "` + cert + `"`, nil},
		{"api_ca_file missing", `"api_url": "https://api.example/v1", "api_ca_file": "` + absent + `"`,
			[]string{`config.d/a.json: api_ca_file: open ` + absent + `: no such file or directory`}},
		{"api_ca_file not PEM", `"api_url": "https://api.example/v1", "api_ca_file": "` + garbage + `"`,
			[]string{`config.d/a.json: api_ca_file: ` + garbage + `: no PEM certificates found`}},
		{"TLS pair", `"coordinator_tls_cert": "` + cert + `", "coordinator_tls_key": "` + key + `"`, nil},
		{"TLS pair that is none", `"coordinator_tls_cert": "` + other + `", "coordinator_tls_key": "` + key + `"`,
			[]string{`config.d/a.json: coordinator_tls_cert: with coordinator_tls_key: tls: private key does not match public key`}},
		{"TLS key missing", `"coordinator_tls_cert": "` + cert + `", "coordinator_tls_key": "` + absent + `"`,
			[]string{`config.d/a.json: coordinator_tls_cert: with coordinator_tls_key: open ` + absent + `: no such file or directory`}},
		{"TLS unused with api_url", `"api_url": "https://api.example/v1", "coordinator_tls_cert": "` + absent + `", "coordinator_tls_key": "` + absent + `"`, nil},
		{"host keys: existing and to be made", `"ssh_host_key_files": ["` + good + `", "` + absent + `"]`, nil},
		{"host key relative", `"ssh_host_key_files": ["keys/ssh_host_ed25519_key"]`,
			[]string{`config.d/a.json: ssh_host_key_files: want absolute paths, got "keys/ssh_host_ed25519_key"`}},
		{"host key not a key", `"ssh_host_key_files": ["` + garbage + `"]`,
			[]string{`config.d/a.json: ssh_host_key_files: ` + garbage + `: ssh: no key found`}},
		{"host key others may read", `"ssh_host_key_files": ["` + open + `"]`,
			[]string{`config.d/a.json: ssh_host_key_files: ` + open + `: permissions 0644 are too open: serve refuses a host key others may read (chmod 600)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadWith(t, tt.extra)
			wantProblems(t, err, tt.want)
			if _, err := os.Stat(absent); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Load created %s: %v", absent, err)
			}
		})
	}
}
