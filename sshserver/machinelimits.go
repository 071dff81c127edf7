package sshserver

import (
	"log/slog"

	"github.com/turku-backup/turku-storage/agentproto"
	"github.com/turku-backup/turku-storage/sessionlog"
)

// claim admits one session of action for machine: at most one checkin and
// one restore per machine at a time, and restores in at most half of
// MaxSessions so that they can never starve the checkins. A refused
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
