package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// MaxStartups is ssh_max_startups, sshd's start:rate:full: from Start
// unauthenticated connections on, new ones are dropped with probability
// Rate% rising to 100% at Full.
type MaxStartups struct {
	Start, Rate, Full int
}

// String is the config.d form, "start:rate:full".
func (m MaxStartups) String() string { return fmt.Sprintf("%d:%d:%d", m.Start, m.Rate, m.Full) }

// MarshalJSON prints the config.d form, which reads back unchanged.
func (m MaxStartups) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(m.String())), nil }

// The admission and session limits of the SSH server: docs/configuration.md,
// and docs/operations.md "Facing the internet" for when to change them.
func setSSHLimitDefaults(v *viper.Viper) {
	v.SetDefault("ssh_max_startups", "30:30:100")
	v.SetDefault("ssh_per_source_max_startups", int64(10))
	v.SetDefault("restore_max_lifetime", "3h")
	// An agent needs one connection and one session (a checkin and a
	// restore of one machine may overlap): a few more leave room for a
	// run starting while the last one's connection closes, and none for
	// one key to take the slots every other machine needs.
	v.SetDefault("ssh_max_connections_per_machine", int64(4))
	v.SetDefault("ssh_max_sessions_per_machine", int64(2))
	// The agent sends its command and request at once.
	v.SetDefault("ssh_session_request_timeout", "5s")
}

// maxSessionRequestTimeout is the SSH server's login grace time, which
// bounds the same wait from the connection's start.
const maxSessionRequestTimeout = 30 * time.Second

// sshLimits reads the keys in sshLimitKeys into c.
func (r *reader) sshLimits(c *Config) {
	c.SSHMaxStartups = r.maxStartups("ssh_max_startups")
	c.SSHPerSourceMaxStartups = r.integer("ssh_per_source_max_startups", 1, 100000)
	for i, s := range r.strings("ssh_trusted_networks") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			// A bare address is a network of one.
			a, aerr := netip.ParseAddr(strings.TrimSpace(s))
			if aerr != nil {
				r.fail(fmt.Sprintf("ssh_trusted_networks[%d]", i), "want a network like 192.0.2.0/24 or 2001:db8::/48, got %q", s)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.SSHTrustedNetworks = append(c.SSHTrustedNetworks, p.Masked())
	}
	c.RestoreMaxLifetime = r.duration("restore_max_lifetime")
	c.SSHMaxConnectionsPerMachine = r.integer("ssh_max_connections_per_machine", 1, 1000)
	c.SSHMaxSessionsPerMachine = r.integer("ssh_max_sessions_per_machine", 1, 1000)
	if c.SSHMaxConnectionsPerMachine > 0 && c.SSHMaxSessionsPerMachine > c.SSHMaxConnectionsPerMachine {
		r.fail("ssh_max_sessions_per_machine", "%d is more than ssh_max_connections_per_machine (%d): each session needs a connection",
			c.SSHMaxSessionsPerMachine, c.SSHMaxConnectionsPerMachine)
	}
	c.SSHSessionRequestTimeout = r.duration("ssh_session_request_timeout")
	if d := c.SSHSessionRequestTimeout; d > 0 && (d < time.Second || d > maxSessionRequestTimeout) {
		r.fail("ssh_session_request_timeout", "%s is out of range 1s..%s (the login grace time bounds it anyway)", d, maxSessionRequestTimeout)
	}
}

// maxStartups reads "start:rate:full", or a single number meaning a hard
// limit (as sshd reads MaxStartups).
func (r *reader) maxStartups(key string) MaxStartups {
	var s string
	switch t := r.v.Get(key).(type) {
	case string:
		s = t
	case int64:
		s = strconv.FormatInt(t, 10)
	default:
		r.fail(key, `want "start:rate:full" like "30:30:100", got %s`, typeName(t))
		return MaxStartups{}
	}
	parts := strings.Split(s, ":")
	var n []int
	for _, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			r.fail(key, `want "start:rate:full" like "30:30:100", got %q`, s)
			return MaxStartups{}
		}
		n = append(n, v)
	}
	var m MaxStartups
	switch len(n) {
	case 1:
		m = MaxStartups{Start: n[0], Rate: 100, Full: n[0]}
	case 3:
		m = MaxStartups{Start: n[0], Rate: n[1], Full: n[2]}
	default:
		r.fail(key, `want "start:rate:full" like "30:30:100", got %q`, s)
		return MaxStartups{}
	}
	if m.Start < 1 || m.Start > m.Full || m.Rate < 0 || m.Rate > 100 {
		r.fail(key, "%q: want 1 <= start <= full and rate 0..100", s)
		return MaxStartups{}
	}
	return m
}
