package sshserver

import (
	"errors"
	"fmt"

	glssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Permissions extension carrying the SHA256 fingerprint of the key that
// signed, for the session to look the machine up again.
const extKeyFingerprint = "turku-key-sha256"

// machineConnsBanner is what OpenSSH's ssh prints (SSH_MSG_USERAUTH_BANNER,
// RFC 4252 §5.4) before "Permission denied" when its machine holds
// MaxConnectionsPerMachine already.
const machineConnsBanner = "Too many connections for this machine on this storage unit; try again once they have ended\n"

var (
	errWrongUser  = errors.New("wrong user")
	errUnknownKey = errors.New("key not authorized")
)

// publicKeyHandler answers "would this key do?". It is also asked about keys
// the client never signs with (RFC 4252 §7 queries), so it decides nothing
// about identity; verifiedKey does (CVE-2024-45337).
//
// Every key offered counts towards MaxAuthTries, queries included (x/crypto
// gives queries a budget of their own): past it the connection is cut, so
// a scanner learns little about which keys are registered per connection,
// and its source earns a penalty (admission.go).
func (s *Server) publicKeyHandler(gctx glssh.Context, key glssh.PublicKey) bool {
	c := connOf(gctx)
	if c.overCap.Load() {
		c.cancel(errMachineConns)
		return false
	}
	if n := c.keysTried.Add(1); int(n) > s.opts.MaxAuthTries {
		c.authFailed.Store(true)
		c.logger().Debug("too many public keys offered, dropping", "max_auth_tries", s.opts.MaxAuthTries)
		c.cancel(errTooManyKeys)
		return false
	}
	if gctx.User() != s.opts.User {
		return false
	}
	_, ok := s.keys.Load().Lookup(key)
	if !ok && s.refuseDeparted(c, key) {
		return false
	}
	if !ok {
		// Usually an agent registered since the last key refresh; sshd
		// logs the same so the operator can match it to a machine. Once
		// per connection: a scanner's further keys are not news.
		if c.keysTried.Load() == 1 {
			c.logger().Info("public key not authorized", "key_type", key.Type(),
				"fingerprint", gossh.FingerprintSHA256(key))
		} else {
			c.logger().Debug("public key not authorized", "key_type", key.Type(),
				"fingerprint", gossh.FingerprintSHA256(key))
		}
	}
	return ok
}

// verifiedKey runs after the client proved it holds key's private half: only
// here is the machine known. It looks the key up again in the current key
// set, binds the machine to the connection and returns fresh Permissions
// naming the key, never the shared object gliderlabs hands out.
func (s *Server) verifiedKey(c *conn, meta gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
	if meta.User() != s.opts.User {
		return nil, errWrongUser
	}
	fp := gossh.FingerprintSHA256(key)
	s.mu.Lock() // against a concurrent SetMachines
	m, ok := s.keys.Load().Lookup(key)
	counted := ok && s.connectMachine(m, c.logger().With("machine", m.UUID, "unit", m.Info.UnitName))
	if counted {
		c.mu.Lock()
		c.machine = &m
		c.fingerprint = fp
		c.counted = true
		c.mu.Unlock()
	}
	s.mu.Unlock()
	if !ok {
		return nil, errUnknownKey
	}
	if !counted {
		// Over MaxConnectionsPerMachine (connectMachine logged it): the
		// agent is told why, and the connection is closed at its next
		// attempt if it does not go away itself.
		c.overCap.Store(true)
		return nil, &gossh.BannerError{Err: errMachineConns, Message: machineConnsBanner}
	}
	c.log.Store(c.logger().With("machine", m.UUID, "unit", m.Info.UnitName))
	c.logger().Info("agent authenticated", "fingerprint", fp)
	c.authed.Store(true)
	c.releaseStartup(outcomeAuthenticated)
	return &gossh.Permissions{Extensions: map[string]string{extKeyFingerprint: fp}}, nil
}

// machineFor returns the machine the connection authenticated as, checked
// three ways: the key that signed (from the ServerConn's Permissions, which
// x/crypto takes from verifiedKey's successful call), the binding verifiedKey
// recorded, and the current key set.
func (s *Server) machineFor(c *conn, sconn *gossh.ServerConn) (Machine, bool) {
	if sconn.Permissions == nil {
		return Machine{}, false
	}
	fp := sconn.Permissions.Extensions[extKeyFingerprint]
	c.mu.Lock()
	bound, boundFP := c.machine, c.fingerprint
	c.mu.Unlock()
	if fp == "" || bound == nil || fp != boundFP {
		return Machine{}, false
	}
	m, ok := s.keys.Load().LookupFingerprint(fp)
	if !ok || m.UUID != bound.UUID {
		return Machine{}, false
	}
	return m, true
}

// refuseDeparted reports whether key belongs to a machine that was
// assigned here and no longer is (SetDeparted). The first time on a
// connection it says so in the log and tells the Observer: the operator
// sees a machine that was moved, not a stranger.
func (s *Server) refuseDeparted(c *conn, key gossh.PublicKey) bool {
	ks := s.departed.Load()
	if ks == nil {
		return false
	}
	m, ok := ks.Lookup(key)
	if !ok {
		return false
	}
	if c.departed.CompareAndSwap(false, true) {
		c.logger().Info(fmt.Sprintf("machine %s (%s) is no longer assigned to this storage unit", m.Info.UnitName, m.UUID),
			"machine", m.UUID, "unit", m.Info.UnitName, "fingerprint", gossh.FingerprintSHA256(key))
		s.opts.Observer.DepartedKeyRefused()
	}
	return true
}
