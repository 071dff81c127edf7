package sshserver

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/turku-backup/turku-storage/sessionlog"
)

// errInternal ends a connection whose handler panicked; the agent reads
// "Session ended: internal error" at most, as for any cause not declared
// agent-visible.
var errInternal = newAgentError("internal error")

// panicError is a panic recovered from a Puller.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// handleConn is gliderlabs' HandleConn with a panic in the handshake or in
// a handler running on this goroutine confined to this connection: it is
// logged with its stack, the connection is dropped, the server serves on.
func (s *Server) handleConn(c *conn) {
	defer func() {
		if v := recover(); v != nil {
			c.logger().Error("panic recovered, dropping the connection", "err", fmt.Sprint(v), "stack", string(debug.Stack()))
			c.cancel(errInternal)
		}
	}()
	s.gl.HandleConn(c)
}

// recoverSession ends a session whose handler panicked: the stack goes to
// our log, the agent is told and gets exit status 1 (best effort: the
// connection is cancelled, so nothing blocks past closeGrace), and only
// this connection ends. Deferred by handleSession.
func (sess *session) recoverSession() {
	v := recover()
	if v == nil {
		return
	}
	sess.logger.Error("panic recovered, ending the session", "err", fmt.Sprint(v), "stack", string(debug.Stack()))
	sess.conn.cancel(errInternal)
	sessionlog.New(sess.ch.Stderr(), sess.srv.opts.StorageName, false, sess.srv.opts.Now).
		Errorf("Storage unit internal error; see its log")
	sess.exit(1)
	sess.ch.Close()
}

// pull runs the Puller, turning a panic into this checkin's failure: the
// agent is told, the stack goes to our log, other sessions run on.
func (sess *session) pull(ctx context.Context, req PullRequest) (err error) {
	defer func() {
		if v := recover(); v != nil {
			sess.logger.Error("panic recovered in checkin", "err", fmt.Sprint(v), "stack", string(debug.Stack()))
			req.Log.Errorf("Storage unit internal error; see its log")
			err = &panicError{value: v}
		}
	}()
	return sess.srv.opts.Puller.Pull(ctx, req)
}

// recoverRequest answers a global request whose handler panicked with
// false (the zero results of the handler), logging the stack. Deferred by
// request.
func (c *conn) recoverRequest(kind string) {
	if v := recover(); v != nil {
		c.logger().Error("panic recovered in global request", "type", kind, "err", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
}

// recoverChannel ends the connection whose channel handler panicked (the
// channel may be accepted already), logging the stack. Deferred by
// channel; a session's own panics are recoverSession's.
func (c *conn) recoverChannel(kind string) {
	if v := recover(); v != nil {
		c.logger().Error("panic recovered in channel handler", "type", kind, "err", fmt.Sprint(v), "stack", string(debug.Stack()))
		c.cancel(errInternal)
	}
}
