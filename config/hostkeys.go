package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// SSHDHostKeyGlob matches the system sshd's private host keys. The old
// storage unit ran behind that sshd and, when neither ssh_ping_host_keys
// nor ssh_ping_host_keys_glob was set, advertised their public halves;
// when ssh_ping_host_keys lists keys, their private halves are looked for
// here.
const SSHDHostKeyGlob = "/etc/ssh/ssh_host_*_key"

// hostKeyFile is one host key and where it came from.
type hostKeyFile struct {
	pub  ssh.PublicKey // nil when it could not be read
	from string        // file, or "ssh_ping_host_keys[i]"
	err  error         // why pub is nil
}

func (k hostKeyFile) String() string {
	if k.pub == nil {
		return fmt.Sprintf("%s: %v", k.from, k.err)
	}
	return fmt.Sprintf("%s %s (%s)", k.pub.Type(), ssh.FingerprintSHA256(k.pub), k.from)
}

// advertisedHostKeys are the keys ssh_ping_host_keys or
// ssh_ping_host_keys_glob name, with their files (glob) or list
// positions.
type advertisedHostKeys struct {
	key   string // the config key that named them
	files []string
	keys  []hostKeyFile
}

// resolveHostKeys makes the served host keys and the advertised ones the
// same set, or reports why they cannot be. Agents put the advertised keys
// in a fresh known_hosts on every ping and connect with
// StrictHostKeyChecking, so a key advertised but not served is an agent
// that fails with "Host key verification failed" (and, since the agent
// ignores ssh's exit status, a backup that silently never happens).
//
// With ssh_host_key_files unset, the private halves of the advertised keys
// are served when they are readable (the glob's FILE.pub beside FILE; for
// a list, the sshd keys in sshdGlob): the identity the old unit's sshd
// had stays, and no agent notices the migration.
func (r *reader) resolveHostKeys(c *Config, adv *advertisedHostKeys, explicit bool, sshdGlob string) {
	if adv == nil || len(adv.keys) == 0 || sshdGlob == "" {
		return
	}
	for _, k := range adv.keys {
		if k.pub == nil {
			return // reported where it was read
		}
	}
	var served []hostKeyFile
	if explicit {
		for _, f := range c.SSHHostKeyFiles {
			served = append(served, readPrivateHostKey(f, true))
		}
	} else {
		var candidates []string
		if adv.key == "ssh_ping_host_keys_glob" {
			for _, f := range adv.files {
				if p, ok := strings.CutSuffix(f, ".pub"); ok {
					candidates = append(candidates, p)
				}
			}
		} else {
			candidates, _ = filepath.Glob(sshdGlob)
		}
		var found []string
		var foundKeys []hostKeyFile
		for _, cand := range candidates {
			k := readPrivateHostKey(cand, false)
			served = append(served, k)
			if k.pub != nil && containsKey(adv.keys, k.pub) && !containsKey(foundKeys, k.pub) {
				found = append(found, cand)
				foundKeys = append(foundKeys, k)
			}
		}
		if sameKeys(adv.keys, foundKeys) {
			c.SSHHostKeyFiles = found
			return
		}
		// What serve would do instead: its own key.
		served = append(served, readPrivateHostKey(c.SSHHostKeyFiles[0], true))
	}
	if sameKeys(adv.keys, served) {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "advertises host keys this server would not serve; agents would fail with \"Host key verification failed\"")
	fmt.Fprintf(&b, "\n    advertised (%s):", adv.key)
	for _, k := range adv.keys {
		b.WriteString("\n      " + k.String())
	}
	if explicit {
		b.WriteString("\n    served (ssh_host_key_files):")
	} else {
		b.WriteString("\n    private halves looked for, then the key served instead (ssh_host_key_files unset):")
	}
	for _, k := range served {
		b.WriteString("\n      " + k.String())
	}
	example := filepath.Join(filepath.Dir(sshdGlob), "ssh_host_ed25519_key")
	if len(adv.files) > 0 {
		example = strings.TrimSuffix(adv.files[0], ".pub")
	}
	fmt.Fprintf(&b, "\n    Either serve the advertised keys: set ssh_host_key_files to their private halves, readable by this user (e.g. %s);", example)
	fmt.Fprintf(&b, "\n    or advertise the keys this server serves: remove %s (turku-api hands agents the new key at their next ping after update-config).", adv.key)
	r.fail(adv.key, "%s", b.String())
}

// readPrivateHostKey reads the public half of a private host key file.
// A served file that does not exist yet is one serve would generate: a new
// key, which no agent knows.
func readPrivateHostKey(path string, served bool) hostKeyFile {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && served {
		return hostKeyFile{from: path, err: errors.New("does not exist: serve would generate a new key")}
	}
	if err != nil {
		return hostKeyFile{from: path, err: unwrapPathError(err)}
	}
	// As sshserver.LoadOrCreateHostKey, which serve uses, refuses it.
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return hostKeyFile{from: path, err: fmt.Errorf("permissions %04o are too open: serve refuses a host key others may read (chmod 600)", st.Mode().Perm())}
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return hostKeyFile{from: path, err: err}
	}
	return hostKeyFile{pub: s.PublicKey(), from: path}
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func containsKey(set []hostKeyFile, k ssh.PublicKey) bool {
	for _, s := range set {
		if s.pub != nil && bytes.Equal(s.pub.Marshal(), k.Marshal()) {
			return true
		}
	}
	return false
}

// sameKeys reports whether a and b hold the same public keys, each
// readable.
func sameKeys(a, b []hostKeyFile) bool {
	for _, k := range b {
		if k.pub == nil || !containsKey(a, k.pub) {
			return false
		}
	}
	for _, k := range a {
		if k.pub == nil || !containsKey(b, k.pub) {
			return false
		}
	}
	return true
}
