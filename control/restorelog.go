package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Restore log events.
const (
	RestoreStarted  = "start"
	RestoreFinished = "end"
)

// RestoreLog is what `restore` tells serve of a restore it runs, so that
// serve's log (the unit's one record of what happened) names the machine,
// the snapshot, the path, the bytes and who ran it. Only `restore` knows
// the snapshot and the path: it pushes to the restore port itself.
type RestoreLog struct {
	Event    string `json:"event"` // RestoreStarted or RestoreFinished
	Machine  string `json:"machine"`
	Unit     string `json:"unit,omitempty"`
	Source   string `json:"source"`
	Snapshot string `json:"snapshot"`
	// Path is --path inside the snapshot; "" is the whole snapshot.
	Path   string `json:"path,omitempty"`
	Module string `json:"module"`
	Port   int    `json:"port"`
	DryRun bool   `json:"dry_run,omitempty"`
	// User is the login that ran restore as the client sees it (SUDO_USER
	// or the login name); serve logs the socket peer's uid and pid beside
	// it, which the client cannot choose.
	User string `json:"user,omitempty"`
	// Bytes and Result are set on RestoreFinished: the bytes rsync sent,
	// and "ok" or the error.
	Bytes  int64  `json:"bytes,omitempty"`
	Result string `json:"result,omitempty"`
}

// maxLogField bounds each text field: the request line is 4 KiB in all.
const maxLogField = 1024

// check refuses a RestoreLog serve should not write into its log.
func (r *RestoreLog) check() error {
	if r == nil {
		return errors.New("no restore")
	}
	if r.Event != RestoreStarted && r.Event != RestoreFinished {
		return fmt.Errorf("event %q: want %q or %q", r.Event, RestoreStarted, RestoreFinished)
	}
	if r.Machine == "" || r.Source == "" || r.Snapshot == "" {
		return errors.New("machine, source and snapshot are required")
	}
	for name, v := range map[string]string{"machine": r.Machine, "unit": r.Unit, "source": r.Source, "snapshot": r.Snapshot,
		"path": r.Path, "module": r.Module, "user": r.User, "result": r.Result} {
		if len(v) > maxLogField || strings.ContainsFunc(v, func(c rune) bool { return c < ' ' || c == 0x7f }) {
			return fmt.Errorf("%s: too long or holds control characters", name)
		}
	}
	if r.Port < 0 || r.Port > 65535 || r.Bytes < 0 {
		return errors.New("port or bytes out of range")
	}
	return nil
}

// peer is who is on the other end of the control socket.
type peer struct{ uid, pid int }

// unknownPeer is a peer whose credentials the system does not give.
var unknownPeer = peer{uid: -1, pid: -1}

// logRestore writes r into serve's log.
func (s *Server) logRestore(r *RestoreLog, who peer) {
	attrs := []any{"machine", r.Machine, "unit", r.Unit, "source", r.Source, "snapshot", r.Snapshot,
		"path", r.Path, "module", r.Module, "port", r.Port, "dry_run", r.DryRun,
		"user", r.User, "peer_uid", who.uid, "peer_pid", who.pid}
	if r.Event == RestoreStarted {
		s.log.Info("restore started", attrs...)
		return
	}
	attrs = append(attrs, "bytes", r.Bytes, "result", r.Result)
	level := slog.LevelInfo
	if r.Result != "ok" {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "restore finished", attrs...)
}
