package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// checkFiles refuses the files serve would refuse at start: a log_file
// that is not systemd, syslog or an absolute path (serve would open it
// relative to its working directory), host key paths that are not
// absolute, and an api_ca_file, TLS pair or existing host key serve
// cannot use. A file this user may not read is left to serve, which may
// run as another user.
func (r *reader) checkFiles(c *Config, explicitKeys, checkHostKeys bool) {
	switch c.LogFile {
	case "", "systemd", "syslog":
	default:
		if !filepath.IsAbs(c.LogFile) {
			r.fail("log_file", "want systemd, syslog or an absolute path, got %q", c.LogFile)
		}
	}
	if c.APICAFile != "" {
		if pem, err := os.ReadFile(c.APICAFile); err != nil {
			if !errors.Is(err, fs.ErrPermission) {
				r.fail("api_ca_file", "%v", err)
			}
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			r.fail("api_ca_file", "%s: no PEM certificates found", c.APICAFile)
		}
	}
	if c.EmbeddedCoordinator() && c.CoordinatorTLSCert != "" && c.CoordinatorTLSKey != "" {
		if _, err := tls.LoadX509KeyPair(c.CoordinatorTLSCert, c.CoordinatorTLSKey); err != nil && !errors.Is(err, fs.ErrPermission) {
			r.fail("coordinator_tls_cert", "with coordinator_tls_key: %v", err)
		}
	}
	for _, f := range c.SSHHostKeyFiles {
		if !filepath.IsAbs(f) {
			if !explicitKeys {
				break // derived from a var_dir reported as relative
			}
			r.fail("ssh_host_key_files", "want absolute paths, got %q", f)
			continue
		}
		if !checkHostKeys {
			continue
		}
		// A missing key is generated at start; one that exists must load.
		if k := readPrivateHostKey(f, false); k.err != nil && !errors.Is(k.err, fs.ErrNotExist) && !errors.Is(k.err, fs.ErrPermission) {
			r.fail("ssh_host_key_files", "%s: %v", f, k.err)
		}
	}
}
