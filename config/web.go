package config

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Web is the read-only dashboard's configuration (web_* keys).
type Web struct {
	// WebListen is the dashboard's address; empty: no dashboard.
	WebListen string
	// WebTLSCert and WebTLSKey serve it over HTTPS; they go together.
	WebTLSCert string
	WebTLSKey  string
	// WebAuthFile is an htpasswd-style file of bcrypt hashes; when set,
	// every request needs HTTP basic authentication.
	WebAuthFile string
	// WebMaxAge and WebWarnAge colour a source's age since its last
	// success as check --max-age and --warn-age rate it (0: no warning
	// level).
	WebMaxAge  time.Duration
	WebWarnAge time.Duration
}

// web checks the web_* keys (read by their settings) and returns
// web_listen, checked, or nil. Like coordinator_listen, the dashboard is refused on an address other than
// loopback unless it is served over TLS or asks for a password: it shows
// every machine's name, sources and failures.
func (r *reader) web(c *Config) *listenAddr {
	if c.WebMaxAge > 0 && c.WebWarnAge >= c.WebMaxAge {
		r.fail("web_warn_age", "must be below web_max_age (%s), got %s", c.WebMaxAge, c.WebWarnAge)
	}
	if (c.WebTLSCert == "") != (c.WebTLSKey == "") {
		r.fail("web_tls_cert", "web_tls_cert and web_tls_key go together")
	}
	for _, f := range []struct{ key, path string }{{"web_tls_cert", c.WebTLSCert}, {"web_tls_key", c.WebTLSKey}, {"web_auth_file", c.WebAuthFile}} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			r.fail(f.key, "want an absolute path, got %q", f.path)
		}
	}
	if c.WebListen == "" {
		return nil
	}
	l := r.listen("web_listen", c.WebListen)
	if c.WebTLSCert != "" && c.WebTLSKey != "" {
		if _, err := tls.LoadX509KeyPair(c.WebTLSCert, c.WebTLSKey); err != nil && !errors.Is(err, fs.ErrPermission) {
			r.fail("web_tls_cert", "with web_tls_key: %v", err)
		}
	}
	if c.WebAuthFile != "" {
		if _, err := ReadWebAuthFile(c.WebAuthFile); err != nil && !errors.Is(err, fs.ErrPermission) {
			r.fail("web_auth_file", "%v", err)
		}
	}
	if l != nil && c.WebTLSCert == "" && c.WebAuthFile == "" && !isLoopbackHost(l.host) {
		r.fail("web_listen", "%q is not a loopback address and neither web_tls_cert nor web_auth_file is set: "+
			"every machine's name, sources and failures would be open to the network; set web_auth_file "+
			"(and web_tls_cert and web_tls_key), or listen on loopback behind a reverse proxy", c.WebListen)
	}
	return l
}

// ReadWebAuthFile reads an htpasswd-style file: one "user:bcrypt-hash"
// a line (htpasswd -B writes them), blank lines and lines starting with
// # ignored. Only bcrypt hashes are accepted: htpasswd's other formats
// (MD5, SHA-1, crypt) are too cheap to guess. It returns the hash of each
// user.
func ReadWebAuthFile(path string) (map[string][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok || user == "":
			return nil, fmt.Errorf("%s:%d: want user:bcrypt-hash", path, n)
		case users[user] != nil:
			return nil, fmt.Errorf("%s:%d: user %q listed twice", path, n, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: not a bcrypt hash (make one with htpasswd -B): %v", path, n, user, err)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no users", path)
	}
	return users, nil
}
