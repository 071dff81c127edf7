package sshserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// LoadOrCreateHostKey returns the host key stored at path, creating an
// Ed25519 key there (OpenSSH private key format, mode 0600, with a .pub
// beside it) when the file does not exist. The directory is created 0700 if
// missing. Like sshd, it refuses a key file that others may read: agents
// trust this key, so anyone who can read it can impersonate the storage unit.
func LoadOrCreateHostKey(path string) (gossh.Signer, error) {
	signer, err := loadHostKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return signer, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("host key %s: generate: %w", path, err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "turku-storage host key")
	if err != nil {
		return nil, fmt.Errorf("host key %s: encode: %w", path, err)
	}
	signer, err = gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	// Written in full, then linked into place: a crash never leaves a
	// half-written key, and of two processes racing here one key wins and
	// both use it.
	if err := atomicfile.WriteNew(path, pem.EncodeToMemory(block), 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadHostKey(path)
		}
		return nil, fmt.Errorf("host key %s: write: %w", path, err)
	}
	pub := AuthorizedKey(signer) + " turku-storage host key\n"
	if err := os.WriteFile(path+".pub", []byte(pub), 0o644); err != nil {
		return nil, fmt.Errorf("host key %s: write public key: %w", path, err)
	}
	return signer, nil
}

func loadHostKey(path string) (gossh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // fs.ErrNotExist is the caller's cue to create it
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("host key %s: permissions %04o are too open, others could impersonate this storage unit; chmod 600 it", path, perm)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	signer, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	return signer, nil
}

// AuthorizedKey returns the public half of s in authorized_keys form
// ("ssh-ed25519 AAAA..."), as ssh_ping_host_keys advertises it.
func AuthorizedKey(s gossh.Signer) string {
	return strings.TrimSuffix(string(gossh.MarshalAuthorizedKey(s.PublicKey())), "\n")
}
