package sshserver

import (
	"errors"
	"net"
	"os"
	"time"
)

// Reasons for ConnectionDropped.
const (
	DropMaxStartups = "max_startups"      // the global cap was full
	DropEarlyDrop   = "random_early_drop" // dropped at random past its start
	DropPerSource   = "per_source"        // the source's own cap was full
	DropPenalty     = "penalty"           // the source serves a penalty
	DropHandshake   = "handshake_timeout" // no key exchange in time
	DropMaxSessions = "max_sessions"
	DropLoginGrace  = "login_grace"
	// One machine over its own limits.
	DropMachineConns    = "machine_connections"     // MaxConnectionsPerMachine
	DropMachineSessions = "machine_sessions"        // MaxSessionsPerMachine
	DropRequestTimeout  = "session_request_timeout" // no action stated in time
)

// dropReasons maps admission's refusals to the reasons Observer is told.
var dropReasons = map[string]string{
	refusedFull:      DropMaxStartups,
	refusedEarlyDrop: DropEarlyDrop,
	refusedWaited:    DropEarlyDrop, // a random early drop, put off
	refusedPerSource: DropPerSource,
	refusedPenalty:   DropPenalty,
}

// Observer is told what the server does, for metrics and live status;
// cmd passes a *monitor.State. Calls must not block.
type Observer interface {
	// AuthFailed counts one failed authentication attempt (an unknown
	// key, a wrong user).
	AuthFailed()
	// DepartedKeyRefused counts a connection refused for offering the
	// key of a machine no longer assigned here (SetDeparted), once per
	// connection; its attempts count in AuthFailed too.
	DepartedKeyRefused()
	// ConnectionDropped counts a connection the server dropped for one
	// of the Drop reasons (admission control may add its own).
	ConnectionDropped(reason string)
	// SessionStarted records an agent's session (mode is
	// monitor.ModeCheckin or monitor.ModeRestore); received is told of the
	// bytes its checkin tunnel carries from the agent, end is called once
	// when the session ends. agentPort is the PORT the agent forwarded;
	// restorePort is, for a restore, the local port the operator's rsync
	// connects to (0 for a checkin). A restore is reported once its port
	// listens.
	SessionStarted(mode, machine, unit, remote string, agentPort, restorePort int) (received func(n int64), end func())
}

type nopObserver struct{}

func (nopObserver) AuthFailed()              {}
func (nopObserver) DepartedKeyRefused()      {}
func (nopObserver) ConnectionDropped(string) {}
func (nopObserver) SessionStarted(string, string, string, string, int, int) (func(int64), func()) {
	return func(int64) {}, func() {}
}

// deadliner is a listener whose Accept can time out (*net.TCPListener,
// *net.UnixListener).
type deadliner interface {
	SetDeadline(time.Time) error
}

// heartbeat runs opts.Heartbeat from the accept loop: before each Accept
// the listener gets a deadline HeartbeatInterval ahead, and each time the
// loop comes round (by a connection or by the deadline) the beat is sent
// if it is due. The beat also takes s.mu, which admitting a connection and
// every key refresh need: if the loop or that lock hangs, the beats stop
// and systemd's watchdog sees it. It reports whether err was only the
// deadline passing.
type heartbeat struct {
	s    *Server
	ln   net.Listener
	last time.Time
}

func (h *heartbeat) arm() {
	if h.s.opts.Heartbeat == nil {
		return
	}
	if d, ok := h.ln.(deadliner); ok {
		_ = d.SetDeadline(time.Now().Add(h.s.opts.HeartbeatInterval))
	}
}

func (h *heartbeat) beat(err error) (timedOut bool) {
	if h.s.opts.Heartbeat == nil {
		return false
	}
	timedOut = err != nil && errors.Is(err, os.ErrDeadlineExceeded)
	if now := time.Now(); timedOut || now.Sub(h.last) >= h.s.opts.HeartbeatInterval {
		h.s.mu.Lock()
		//nolint:staticcheck // an empty critical section: proves s.mu is free
		h.s.mu.Unlock()
		h.last = now
		h.s.opts.Heartbeat()
	}
	return timedOut
}
