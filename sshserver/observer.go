package sshserver

// SessionObserver is told when an agent's session starts its work and
// when it ends, for live status; cmd hands it serve's control registry.
type SessionObserver interface {
	// SessionStarted is called once the agent's request is read (and, for
	// a restore, once its port listens); the session calls ended when it
	// is over.
	SessionStarted(SessionInfo) (ended func())
}

// SessionInfo describes a running session.
type SessionInfo struct {
	Machine string
	Unit    string
	// Remote is the agent's address.
	Remote string
	// Mode is the request's action: "checkin" or "restore".
	Mode string
	// AgentPort is the PORT the agent forwarded.
	AgentPort int
	// RestorePort is the local port a restore listens on; 0 for checkin.
	RestorePort int
}

// observe reports a session to Options.Observer, if any, and returns the
// function to call when it ends.
func (sess *session) observe(mode string, agentPort uint32, restorePort int) func() {
	o := sess.srv.opts.Observer
	if o == nil {
		return func() {}
	}
	return o.SessionStarted(SessionInfo{
		Machine:     sess.machine.UUID,
		Unit:        sess.machine.Info.UnitName,
		Remote:      sess.conn.RemoteAddr().String(),
		Mode:        mode,
		AgentPort:   int(agentPort),
		RestorePort: restorePort,
	})
}
