package tunnel

import (
	"errors"
	"fmt"
)

// PortRange is the range of agent ports a reverse forward may name and a
// restore may listen on (tunnel_port_range), both ends included.
type PortRange struct {
	Min, Max uint32
}

// DefaultPorts is the range turku-agent picks its port from (ping.py:
// random.randint(49152, 65535), the IANA dynamic range). Ports below it
// belong to services of the storage unit's host (Redis on 6379, turku-api
// on 8000), whose clients a restore listener must never meet when such a
// service is down for a moment.
var DefaultPorts = PortRange{Min: 49152, Max: 65535}

// MinPort is the lowest port any range may start at: below it are the
// privileged ports of system services.
const MinPort = 1024

// Contains reports whether port is in r.
func (r PortRange) Contains(port uint32) bool { return port >= r.Min && port <= r.Max }

// String is the config.d form, "MIN-MAX".
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// Valid reports whether r is a usable range: MinPort <= Min <= Max <= 65535.
func (r PortRange) Valid() bool { return r.Min >= MinPort && r.Min <= r.Max && r.Max <= 65535 }

// Ports limits a restore endpoint to r; without it DefaultPorts applies.
func Ports(r PortRange) Option {
	return func(e *Endpoint) { e.ports = r }
}

// Why Restore refused a port; the agent is told which (docs/protocol.md
// §3.2: the agent prints restore instructions naming the port it asked
// for, so no other port will do).
var (
	// ErrRestorePortOutOfRange: the port is outside tunnel_port_range.
	// Below 1024 are system services; above it and below the agent's
	// range are services of the storage unit's host, whose clients
	// (root's redis-cli, serve's own API calls) would reach the agent.
	ErrRestorePortOutOfRange = errors.New("restore port is outside the tunnel port range")
	// ErrRestorePortTaken: something else listens on the port. Falling
	// back to another port would leave the operator, following the
	// agent's instructions, talking to whoever holds the asked one.
	ErrRestorePortTaken = errors.New("restore port is in use on the storage unit")
)
