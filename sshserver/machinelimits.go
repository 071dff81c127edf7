package sshserver

import (
	"log/slog"
	"time"

	"github.com/turku-backup/turku-storage/agentproto"
	"github.com/turku-backup/turku-storage/sessionlog"
)

// claim admits one session of action for machine: at most one checkin and
// one restore per machine at a time, and restores in at most half of
// MaxSessions so that they can never starve the checkins. A claimed
// checkin no longer counts against MaxSessions (session.leaveMaxSessions):
// one per machine, checkins are bounded by the fleet, and a night with
// more machines due than MaxSessions must not refuse the ones that only
// wait for one of max_concurrent_backups slots. A refused
// session is told why on its stderr; the running one is not disturbed.
// release must be called once the session ends.
func (s *Server) claim(machine, action string, log *slog.Logger, alog *sessionlog.Logger) (release func(), ok bool) {
	key := machine + "\x00" + action
	s.busyMu.Lock()
	if s.busy[key] {
		s.busyMu.Unlock()
		log.Info("session refused: machine already has one running")
		alog.Errorf("A %s for this machine is already running on this storage unit; try again once it has ended", action)
		return nil, false
	}
	restore := action == agentproto.ActionRestore
	if restore {
		if limit := s.maxRestores(); s.restores.Load() >= int64(limit) {
			s.busyMu.Unlock()
			log.Warn("restore refused: too many restore sessions", "max_restores", limit)
			alog.Errorf("Too many restore sessions on this storage unit; try again later")
			return nil, false
		}
		s.restores.Add(1)
	}
	s.busy[key] = true
	s.busyMu.Unlock()
	return func() {
		s.busyMu.Lock()
		delete(s.busy, key)
		if restore {
			s.restores.Add(-1)
		}
		s.busyMu.Unlock()
	}, true
}

// maxRestores is the share of MaxSessions restores may take.
func (s *Server) maxRestores() int {
	return max(s.opts.MaxSessions/2, 1)
}

// machineUse is one machine's authenticated connections and sessions, and
// the refusals not yet summarised in the log. Entries exist while the
// machine has a connection, so the map is bounded by the machines that
// may log in.
type machineUse struct {
	conns, sessions int
	// Refusals in the summary window that opened at since (zero: no
	// window open), by what was refused.
	refused [numOver]int
	since   time.Time
}

// What a machine over its limits is refused, as the summary names it.
const (
	overConns = iota
	overSessions
	overStalled // a session that stated no action in time
	numOver
)

var machineRefusalNames = [numOver]string{"connections", "sessions", "stalled_sessions"}

// machineDrops are the Observer's reasons for each refusal.
var machineDrops = [numOver]string{DropMachineConns, DropMachineSessions, DropRequestTimeout}

// connectMachine counts an authenticated connection of machine, or
// refuses it when the machine holds MaxConnectionsPerMachine already: one
// key must not take what every other machine needs (connections, memory,
// session slots). log is the connection's.
func (s *Server) connectMachine(m Machine, log *slog.Logger) bool {
	s.useMu.Lock()
	defer s.useMu.Unlock()
	u := s.use[m.UUID]
	if u == nil {
		u = &machineUse{}
		s.use[m.UUID] = u
	}
	if u.conns >= s.opts.MaxConnectionsPerMachine {
		s.machineRefused(u, m, overConns, log)
		return false
	}
	u.conns++
	return true
}

// disconnectMachine gives back a connection connectMachine counted. Once
// the machine's last connection is gone, its pending refusals are
// summarised.
func (s *Server) disconnectMachine(m Machine) {
	s.useMu.Lock()
	defer s.useMu.Unlock()
	u := s.use[m.UUID]
	if u == nil {
		return
	}
	if u.conns--; u.conns > 0 {
		return
	}
	s.summarise(u, m)
	delete(s.use, m.UUID)
}

// startMachineSession counts a session of machine before it may take one
// of the MaxSessions slots, or refuses it when the machine runs
// MaxSessionsPerMachine already.
func (s *Server) startMachineSession(m Machine, log *slog.Logger) bool {
	s.useMu.Lock()
	defer s.useMu.Unlock()
	u := s.use[m.UUID]
	if u == nil { // the connection is not counted: it is going away
		return false
	}
	if u.sessions >= s.opts.MaxSessionsPerMachine {
		s.machineRefused(u, m, overSessions, log)
		return false
	}
	u.sessions++
	return true
}

func (s *Server) endMachineSession(m Machine) {
	s.useMu.Lock()
	defer s.useMu.Unlock()
	if u := s.use[m.UUID]; u != nil {
		u.sessions--
	}
}

// refuseMachine counts a refusal of m that no limit of machinelimits.go
// decided: a second session on a connection (overSessions), a session that
// stated no action in time (overStalled).
func (s *Server) refuseMachine(m Machine, what int, log *slog.Logger) {
	s.useMu.Lock()
	defer s.useMu.Unlock()
	if u := s.use[m.UUID]; u != nil {
		s.machineRefused(u, m, what, log)
	}
}

// machineRefused counts a refusal. The first of a window is logged at
// once; the further ones are summarised once a minute while they go on,
// and when the machine's last connection is gone. s.useMu is held.
func (s *Server) machineRefused(u *machineUse, m Machine, what int, log *slog.Logger) {
	s.opts.Observer.ConnectionDropped(machineDrops[what])
	now := s.opts.Now()
	if u.since.IsZero() {
		u.since = now
		log.Warn("refusing a machine over its limits; further refusals are summarised",
			"refused", machineRefusalNames[what],
			"max_connections_per_machine", s.opts.MaxConnectionsPerMachine,
			"max_sessions_per_machine", s.opts.MaxSessionsPerMachine,
			"session_request_timeout", s.opts.SessionRequestTimeout)
		return
	}
	u.refused[what]++
	if now.Sub(u.since) >= summaryEvery {
		s.summarise(u, m)
		u.since = now
	}
}

// summarise logs the refusals counted since the window opened (or the
// last summary), if any, and clears them; s.useMu is held.
func (s *Server) summarise(u *machineUse, m Machine) {
	if u.refused == [numOver]int{} {
		return
	}
	args := []any{"machine", m.UUID, "unit", m.Info.UnitName, "period", s.opts.Now().Sub(u.since).Round(time.Second)}
	for i, n := range u.refused {
		args = append(args, machineRefusalNames[i], n)
	}
	s.logger.Warn("refused a machine over its limits", args...)
	u.refused = [numOver]int{}
}
