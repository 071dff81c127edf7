package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/turku-backup/turku-storage/internal/testcert"
)

// writeAuthFile writes an htpasswd-style file with one bcrypt user.
func writeAuthFile(t *testing.T, dir, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "web.htpasswd")
	if err := os.WriteFile(p, []byte("# operators\n"+user+":"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWebListen: web_listen off loopback is refused unless the dashboard
// is served over TLS or asks for a password, as coordinator_listen is.
func TestWebListen(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := testcert.Write(t, dir)
	auth := writeAuthFile(t, dir, "ops", "hunter22")
	md5 := filepath.Join(dir, "md5.htpasswd")
	if err := os.WriteFile(md5, []byte("ops:$apr1$abc$0123456789abcdefghijkl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := `web_listen: %q is not a loopback address and neither web_tls_cert nor web_auth_file is set`
	tests := []struct {
		name  string
		extra string
		want  string // a problem the error must contain; "" for none
	}{
		{"off", ``, ""},
		{"loopback", `"web_listen": "127.0.0.1:8411"`, ""},
		{"localhost", `"web_listen": "localhost:8411"`, ""},
		{"loopback v6", `"web_listen": "[::1]:8411"`, ""},
		{"every interface", `"web_listen": ":8411"`, strings.ReplaceAll(refused, "%q", `":8411"`)},
		{"public address", `"web_listen": "192.0.2.10:8411"`, strings.ReplaceAll(refused, "%q", `"192.0.2.10:8411"`)},
		{"host name", `"web_listen": "turku.example.com:8411"`, strings.ReplaceAll(refused, "%q", `"turku.example.com:8411"`)},
		{"with TLS", `"web_listen": ":8411", "web_tls_cert": "` + cert + `", "web_tls_key": "` + key + `"`, ""},
		{"with a password file", `"web_listen": ":8411", "web_auth_file": "` + auth + `"`, ""},
		{"TLS half a pair", `"web_listen": "127.0.0.1:8411", "web_tls_cert": "` + cert + `"`, "web_tls_cert: web_tls_cert and web_tls_key go together"},
		{"TLS pair not a pair", `"web_listen": "127.0.0.1:8411", "web_tls_cert": "` + cert + `", "web_tls_key": "` + cert + `"`, "web_tls_cert: with web_tls_key:"},
		{"password file missing", `"web_listen": ":8411", "web_auth_file": "` + filepath.Join(dir, "none") + `"`, "web_auth_file: open "},
		{"password file not bcrypt", `"web_listen": ":8411", "web_auth_file": "` + md5 + `"`, `md5.htpasswd:1: user "ops": not a bcrypt hash`},
		{"relative password file", `"web_listen": "127.0.0.1:8411", "web_auth_file": "web.htpasswd"`, `web_auth_file: want an absolute path, got "web.htpasswd"`},
		{"service name", `"web_listen": "127.0.0.1:http"`, `web_listen: want a port number, got "http"`},
		{"on the metrics port", `"metrics_listen": "127.0.0.1:9410", "web_listen": "127.0.0.1:9410"`, `web_listen: "127.0.0.1:9410" takes the port metrics_listen uses`},
		{"max age zero", `"web_max_age": "0s"`, "web_max_age: must be positive"},
		{"warn age above max", `"web_max_age": "24h", "web_warn_age": "48h"`, "web_warn_age: must be below web_max_age (24h0m0s), got 48h0m0s"},
		{"warn age", `"web_max_age": "48h", "web_warn_age": "24h"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadWith(t, tt.extra)
			wantErrContaining(t, err, tt.want)
		})
	}
}

func TestWebDefaults(t *testing.T) {
	c, err := Load(writeConfig(t, map[string]string{"a.json": `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}, "web_warn_age": "1d"}`}))
	if err == nil || !strings.Contains(err.Error(), `web_warn_age: want a duration`) {
		t.Fatalf("web_warn_age 1d: got %v, want a duration error", err)
	}
	c, err = Load(writeConfig(t, map[string]string{"a.json": `{"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}}`}))
	if err != nil {
		t.Fatal(err)
	}
	if c.WebListen != "" || c.WebMaxAge != 48*time.Hour || c.WebWarnAge != 0 {
		t.Errorf("got web_listen %q, web_max_age %v, web_warn_age %v; want off, 48h (check --max-age), 0", c.WebListen, c.WebMaxAge, c.WebWarnAge)
	}
}

func TestReadWebAuthFile(t *testing.T) {
	dir := t.TempDir()
	good := writeAuthFile(t, dir, "ops", "hunter22")
	users, err := ReadWebAuthFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if bcrypt.CompareHashAndPassword(users["ops"], []byte("hunter22")) != nil || len(users) != 1 {
		t.Errorf("got %d users; ops's hash does not match its password", len(users))
	}
	hash := string(users["ops"])
	tests := []struct{ name, content, want string }{
		{"empty", "# nobody\n\n", "no users"},
		{"no colon", "ops\n", ":1: want user:bcrypt-hash"},
		{"empty user", ":" + hash + "\n", ":1: want user:bcrypt-hash"},
		{"twice", "ops:" + hash + "\nops:" + hash + "\n", `:2: user "ops" listed twice`},
		{"plain text", "ops:hunter22\n", `:1: user "ops": not a bcrypt hash`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadWebAuthFile(p); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
