package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// PortRange is tunnel_port_range, "MIN-MAX": the agent ports a reverse
// forward may name and a restore may listen on.
type PortRange struct {
	Min, Max int
}

// String is the config.d form, "MIN-MAX".
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// MarshalJSON prints the config.d form, which reads back unchanged.
func (r PortRange) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(r.String())), nil }

// Contains reports whether port is in r.
func (r PortRange) Contains(port int) bool { return port >= r.Min && port <= r.Max }

// minTunnelPort is the lowest port tunnel_port_range may start at: a root
// storage unit must never listen on a privileged port for an agent.
const minTunnelPort = 1024

// tunnelSettings warns of an api_url a tunnel could stand in for
// (tunnel_port_range and the report spool's limits are read by their
// settings).
func (r *reader) tunnelSettings(c *Config) {
	if host, port, ok := loopbackHTTP(c.APIURL); ok {
		// serve's own connections never pass a tunnel endpoint, so the
		// secret does not reach an agent; but any local process that
		// takes the port while the API is down receives it.
		where := "outside tunnel_port_range " + c.TunnelPortRange.String()
		if c.TunnelPortRange.Contains(port) {
			where = "inside tunnel_port_range " + c.TunnelPortRange.String() + ", so an agent's restore may take it while the API is down (serve's calls then fail)"
		}
		r.warnings = append(r.warnings, fmt.Sprintf("%s: api_url: %s is plain http on loopback (%s port %d, %s): while the API is down, any local process that takes the port receives the storage secret with the next call; prefer https",
			r.src.where("api_url"), c.APIURL, host, port, where))
	}
}

// loopbackHTTP reports whether u is an http:// URL to a loopback host, and
// that host and port.
func loopbackHTTP(u string) (host string, port int, ok bool) {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" {
		return "", 0, false
	}
	host = p.Hostname()
	port = 80
	if s := p.Port(); s != "" {
		if port, err = strconv.Atoi(s); err != nil {
			return "", 0, false
		}
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return host, port, true
	}
	// Names are not resolved here: loading the configuration asks no DNS.
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", 0, false
	}
	return host, port, a.Unmap().IsLoopback()
}

// portRange reads "MIN-MAX".
func (r *reader) portRange(key string) PortRange {
	s, ok := r.v.Get(key).(string)
	if !ok {
		r.fail(key, `want a port range like "49152-65535", got %s`, typeName(r.v.Get(key)))
		return PortRange{}
	}
	lo, hi, found := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !found || err1 != nil || err2 != nil {
		r.fail(key, `want a port range like "49152-65535", got %q`, s)
		return PortRange{}
	}
	if a < minTunnelPort || a > b || b > 65535 {
		r.fail(key, "%q: want %d <= MIN <= MAX <= 65535", s, minTunnelPort)
		return PortRange{}
	}
	return PortRange{Min: a, Max: b}
}
