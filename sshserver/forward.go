package sshserver

import (
	"context"
	"time"

	"github.com/turku-backup/turku-storage/tunnel"
	gossh "golang.org/x/crypto/ssh"
)

// forward is a reverse forward the agent asked for, spelled as it asked:
// the forwarded-tcpip channels must echo BindAddr and Port byte for byte.
type forward struct {
	BindAddr string
	Port     uint32
}

// tcpipForwardRequest is the payload of the "tcpip-forward" and
// "cancel-tcpip-forward" global requests, RFC 4254 §7.1.
type tcpipForwardRequest struct {
	BindAddr string // address to bind
	BindPort uint32 // port number to bind
}

// tunnelPorts is Options.TunnelPorts with its default; an invalid range
// (New's caller skipped config's validation) admits no port at all.
func (s *Server) tunnelPorts() tunnel.PortRange {
	switch r := s.opts.TunnelPorts; {
	case r == (tunnel.PortRange{}):
		return tunnel.DefaultPorts
	case !r.Valid():
		return tunnel.PortRange{}
	default:
		return r
	}
}

// loopbackBind reports whether a requested bind address means loopback only:
// OpenSSH sends "localhost" for -R PORT:HOST:HOSTPORT.
func loopbackBind(addr string) bool {
	switch addr {
	case "", "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// handleTCPIPForward records the agent's -R without binding anything: the
// session later opens a private endpoint (checkin) or the restore port, and
// only for a port recorded here.
func (s *Server) handleTCPIPForward(c *conn, req *gossh.Request) (bool, []byte) {
	var p tcpipForwardRequest
	if err := gossh.Unmarshal(req.Payload, &p); err != nil {
		c.logger().Warn("malformed tcpip-forward request", "err", err)
		return false, nil
	}
	log := c.logger().With("bind", p.BindAddr, "port", p.BindPort)
	if !loopbackBind(p.BindAddr) {
		log.Warn("reverse forward refused: not a loopback address")
		return false, nil
	}
	// The agent picks its port in 49152-65535 (turku-agent ping.py), the
	// default of TunnelPorts; a restore listens on that port for real, so
	// the ports of the host's own services (and port 0, the server's
	// choice) are refused here already.
	if ports := s.tunnelPorts(); !ports.Contains(p.BindPort) {
		log.Warn("reverse forward refused: port out of range", "min", ports.Min, "max", ports.Max)
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.forwards {
		if f.Port == p.BindPort && f.BindAddr == p.BindAddr {
			log.Warn("reverse forward refused: already requested")
			return false, nil
		}
	}
	if len(c.forwards) >= s.opts.MaxForwards {
		log.Warn("reverse forward refused: too many forwards", "max_forwards", s.opts.MaxForwards)
		return false, nil
	}
	c.forwards = append(c.forwards, forward{BindAddr: p.BindAddr, Port: p.BindPort})
	c.forwardsChangedLocked()
	log.Debug("reverse forward recorded")
	// RFC 4254 §7.1: the reply carries a port only when port 0 was asked.
	return true, nil
}

func (s *Server) handleCancelTCPIPForward(c *conn, req *gossh.Request) (bool, []byte) {
	var p tcpipForwardRequest
	if err := gossh.Unmarshal(req.Payload, &p); err != nil {
		c.logger().Warn("malformed cancel-tcpip-forward request", "err", err)
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, f := range c.forwards {
		if f.Port == p.BindPort && f.BindAddr == p.BindAddr {
			c.forwards = append(c.forwards[:i], c.forwards[i+1:]...)
			return true, nil
		}
	}
	return false, nil
}

// defaultForwardWait is how long a session waits for a reverse forward it names
// that has not been recorded yet. OpenSSH sends tcpip-forward before it
// opens the session, but gliderlabs handles global requests and channels on
// different goroutines, so the record may trail the agent's request a bit.
const defaultForwardWait = 2 * time.Second

// forwardFor returns the reverse forward this connection asked for port,
// waiting up to defaultForwardWait for it to be recorded.
func (c *conn) forwardFor(ctx context.Context, port int) (forward, bool) {
	timer := time.NewTimer(c.srv.forwardWait)
	defer timer.Stop()
	for {
		c.mu.Lock()
		changed := c.fwdChanged
		for _, f := range c.forwards {
			if int(f.Port) == port {
				c.mu.Unlock()
				return f, true
			}
		}
		c.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return forward{}, false
		case <-ctx.Done():
			return forward{}, false
		}
	}
}

// forwardsChangedLocked wakes sessions waiting in forwardFor; c.mu is held.
func (c *conn) forwardsChangedLocked() {
	close(c.fwdChanged)
	c.fwdChanged = make(chan struct{})
}

// denyGlobalRequest answers every other global request false:
// keepalive@openssh.com and no-more-sessions@openssh.com expect exactly
// that, and streamlocal forwards are not offered.
func (s *Server) denyGlobalRequest(c *conn, req *gossh.Request) (bool, []byte) {
	switch req.Type {
	case "keepalive@openssh.com", "no-more-sessions@openssh.com", "hostkeys-prove-00@openssh.com":
	default:
		c.logger().Info("global request refused", "type", req.Type)
	}
	return false, nil
}

// denyForwardChannel refuses ssh -L, -D and -W: agents reach nothing here.
func (s *Server) denyForwardChannel(c *conn, _ *gossh.ServerConn, nc gossh.NewChannel) {
	c.logger().Warn("forwarding channel refused", "type", nc.ChannelType())
	nc.Reject(gossh.Prohibited, "port forwarding is not allowed")
}

// denyChannel refuses every channel type not named in the server's map.
func (s *Server) denyChannel(c *conn, _ *gossh.ServerConn, nc gossh.NewChannel) {
	c.logger().Info("channel type refused", "type", nc.ChannelType())
	nc.Reject(gossh.UnknownChannelType, "unsupported channel type")
}
