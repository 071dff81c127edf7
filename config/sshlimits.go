package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
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

// maxSessionRequestTimeout is the SSH server's login grace time, which
// bounds the same wait from the connection's start.
const maxSessionRequestTimeout = 30 * time.Second

// sshLimits checks the SSH server's limits (read by their settings)
// against each other and the login grace time.
func (r *reader) sshLimits(c *Config) {
	if c.SSHMaxConnectionsPerMachine > 0 && c.SSHMaxSessionsPerMachine > c.SSHMaxConnectionsPerMachine {
		r.fail("ssh_max_sessions_per_machine", "%d is more than ssh_max_connections_per_machine (%d): each session needs a connection",
			c.SSHMaxSessionsPerMachine, c.SSHMaxConnectionsPerMachine)
	}
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
