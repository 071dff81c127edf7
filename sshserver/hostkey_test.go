package sshserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

func TestLoadOrCreateHostKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "ssh_host_ed25519_key")

	first, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := first.PublicKey().Type(); got != gossh.KeyAlgoED25519 {
		t.Errorf("key type %s, want ssh-ed25519", got)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700 | os.ModeDir, path + ".pub": 0o644} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), want)
		}
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Errorf("not in OpenSSH format:\n%s", data)
	}
	pub, _ := os.ReadFile(path + ".pub")
	if !strings.HasPrefix(string(pub), AuthorizedKey(first)+" ") {
		t.Errorf(".pub is %q, want %q", pub, AuthorizedKey(first))
	}

	again, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if AuthorizedKey(again) != AuthorizedKey(first) {
		t.Error("second load made a new key")
	}

	// OpenSSH reads it, and derives the same public key.
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		out, err := exec.Command("ssh-keygen", "-y", "-f", path).Output()
		if err != nil {
			t.Fatalf("ssh-keygen -y: %v", err)
		}
		if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, AuthorizedKey(first)) {
			t.Errorf("ssh-keygen derives %q, want %q", got, AuthorizedKey(first))
		}
	}
}

func TestLoadHostKeyErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr string
	}{
		{name: "world readable", content: "x", mode: 0o644, wantErr: "permissions 0644 are too open"},
		{name: "group readable", content: "x", mode: 0o640, wantErr: "too open"},
		{name: "not a key", content: "hello", mode: 0o600, wantErr: "no key found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tt.mode) // umask
			_, err := LoadOrCreateHostKey(path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want an error about %s containing %q", err, path, tt.wantErr)
			}
		})
	}
}

// TestLoadOpenSSHHostKey: a key made by ssh-keygen (e.g. sshd's own) works.
func TestLoadOpenSSHHostKey(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("no ssh-keygen")
	}
	path := filepath.Join(t.TempDir(), "key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	s, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(path + ".pub")
	if !strings.HasPrefix(string(pub), AuthorizedKey(s)) {
		t.Errorf("loaded %q, ssh-keygen wrote %q", AuthorizedKey(s), pub)
	}
}
