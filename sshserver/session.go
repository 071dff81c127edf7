package sshserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/turku-backup/turku-storage/agentproto"
	"github.com/turku-backup/turku-storage/monitor"
	"github.com/turku-backup/turku-storage/sessionlog"
	"github.com/turku-backup/turku-storage/tunnel"
	gossh "golang.org/x/crypto/ssh"
)

// execRequest is the payload of an "exec" channel request, RFC 4254 §6.5.
type execRequest struct {
	Command string
}

// exitStatusRequest is the payload of an "exit-status" channel request,
// RFC 4254 §6.10.
type exitStatusRequest struct {
	Status uint32
}

// session is the one session channel of an agent connection.
type session struct {
	srv     *Server
	conn    *conn
	sconn   *gossh.ServerConn
	machine Machine
	ch      gossh.Channel
	logger  *slog.Logger
	stated  *time.Timer    // until the agent's request is read
	wg      sync.WaitGroup // every goroutine the session starts
	// leaveMaxSessions gives back the session's place among MaxSessions,
	// once: when it ends, or when it is a claimed checkin.
	leaveMaxSessions func()
}

// handleSession is the "session" channel handler. It replaces gliderlabs'
// DefaultSessionHandler, which accepts env and agent forwarding requests.
func (s *Server) handleSession(c *conn, sconn *gossh.ServerConn, nc gossh.NewChannel) {
	m, ok := s.machineFor(c, sconn)
	if !ok {
		c.logger().Warn("session refused: machine no longer authorized")
		nc.Reject(gossh.Prohibited, "not authorized")
		c.cancel(ErrMachineRevoked)
		return
	}
	c.mu.Lock()
	second := c.session
	c.session = true
	c.mu.Unlock()
	if second {
		// Counted among the machine's refusals, so that a client opening
		// channel after channel makes one log line, not one each.
		s.refuseMachine(m, overSessions, c.logger())
		nc.Reject(gossh.Prohibited, "only one session per connection")
		return
	}
	// Cut short (revoked, shutdown, too slow): the agent has its exit
	// status and the reason, so the connection can go now, once the
	// session's slots are free again (deferred first, so run last).
	defer func() {
		if c.ctx.Err() != nil {
			c.closeNet()
		}
	}()
	// The machine's own limit first: one machine must never hold the
	// slots every other machine needs.
	if !s.startMachineSession(m, c.logger()) {
		nc.Reject(gossh.ResourceShortage, "too many sessions for this machine")
		c.cancel(errTooManySessions)
		return
	}
	defer s.endMachineSession(m)
	if !s.takeSession(c) {
		c.logger().Warn("too many sessions, dropping", "max_sessions", s.opts.MaxSessions)
		s.opts.Observer.ConnectionDropped(DropMaxSessions)
		nc.Reject(gossh.ResourceShortage, "too many sessions")
		c.cancel(errTooManySessions) // nothing runs: the connection closes now
		return
	}
	var uncount sync.Once
	leave := func() { uncount.Do(func() { <-s.sessions }) }
	defer leave()
	// While running, cancelling the connection gives the session
	// closeGrace to tell the agent why before the connection is cut.
	c.mu.Lock()
	c.running = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()
	ch, reqs, err := nc.Accept()
	if err != nil {
		c.logger().Warn("accept session channel", "err", err)
		return
	}
	sess := &session{srv: s, conn: c, sconn: sconn, machine: m, ch: ch, logger: c.logger(), leaveMaxSessions: leave}
	// The agent sends its command and request at once; a session that
	// states no action holds a slot for SessionRequestTimeout at most.
	sess.stated = time.AfterFunc(s.opts.SessionRequestTimeout, func() {
		c.logger().Debug("session stated no action in time, dropping", "session_request_timeout", s.opts.SessionRequestTimeout)
		s.refuseMachine(m, overStalled, c.logger())
		c.cancel(errRequestTime)
	})
	defer sess.stated.Stop()
	defer sess.recoverSession()
	sess.run(reqs)
}

// takeSession takes one of MaxSessions for a new session of c, waiting
// for one while they are all taken: in a burst of agents, sessions that
// state a checkin give theirs back within milliseconds. It reports false
// once sessionWait passed or c ended first.
func (s *Server) takeSession(c *conn) bool {
	select {
	case s.sessions <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(s.opts.sessionWait)
	defer t.Stop()
	select {
	case s.sessions <- struct{}{}:
		return true
	case <-t.C:
	case <-c.ctx.Done():
	}
	return false
}

// run waits for exec or shell, serves the agent's request, sends the exit
// status and closes the channel.
func (sess *session) run(reqs <-chan *gossh.Request) {
	ctx, cancel := context.WithCancelCause(sess.conn.ctx)
	defer cancel(errSessionDone)

	start := make(chan string, 1)
	reqsDone := make(chan struct{})
	sess.wg.Add(1)
	go func() {
		defer sess.wg.Done()
		defer close(reqsDone)
		sess.serveRequests(reqs, start)
	}()

	select {
	case cmd := <-start:
		sess.wg.Add(1)
		go func() {
			defer sess.wg.Done()
			sess.keepalive(ctx)
		}()
		code := sess.serve(ctx, cmd)
		cancel(errSessionDone)
		sess.exit(code)
	case <-reqsDone: // the client gave up before asking for a command
	case <-ctx.Done():
	}
	sess.ch.Close()
	// The client closes the connection once the channel is gone; one that
	// does not is dropped after a while (the timer cancels the connection).
	sess.conn.after(sess.srv.linger, func() { sess.conn.cancel(errSessionDone) })
	// The request channel closes when the client acknowledges our close,
	// or when the connection is gone (linger, or closeGrace once cancelled).
	<-reqsDone
	sess.wg.Wait()
}

// serveRequests answers the session's channel requests until the channel
// closes. The first exec or shell starts the protocol; nothing else is
// granted.
func (sess *session) serveRequests(reqs <-chan *gossh.Request, start chan<- string) {
	started, refused := false, false
	for req := range reqs {
		switch req.Type {
		case "exec", "shell":
			if started {
				req.Reply(false, nil)
				continue
			}
			var cmd string
			if req.Type == "exec" {
				var p execRequest
				if err := gossh.Unmarshal(req.Payload, &p); err != nil {
					req.Reply(false, nil)
					continue
				}
				cmd = p.Command
			}
			// Any command runs the protocol, as the old forced command did.
			started = true
			req.Reply(true, nil)
			start <- cmd
		case "env":
			// OpenSSH sends LANG and LC_* (SendEnv); RFC 4254 §6.4 lets
			// the server refuse quietly.
			req.Reply(false, nil)
		case "pty-req", "x11-req", "auth-agent-req@openssh.com", "subsystem":
			// Once per session at INFO: a client repeating it is not news.
			if !refused {
				sess.logger.Info("session request refused", "type", req.Type)
			} else {
				sess.logger.Debug("session request refused", "type", req.Type)
			}
			refused = true
			req.Reply(false, nil)
		default: // signal, window-change, break, eow@openssh.com, ...
			sess.logger.Debug("session request ignored", "type", req.Type)
			req.Reply(false, nil)
		}
	}
}

// keepalive asks the client for a reply every IdleTimeout/3 so that a live
// but quiet agent (restore mode) is never taken for a dead one.
func (sess *session) keepalive(ctx context.Context) {
	every(ctx, sess.srv.opts.IdleTimeout/3, func() bool {
		_, _, err := sess.sconn.SendRequest("keepalive@openssh.com", true, nil)
		return err == nil
	})
}

// every calls f every d until ctx ends or f returns false.
func every(ctx context.Context, d time.Duration, f func() bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !f() {
			return
		}
	}
}

// exit sends the exit status, RFC 4254 §6.10, after EOF on stdout.
func (sess *session) exit(code int) {
	sess.ch.CloseWrite()
	if _, err := sess.ch.SendRequest("exit-status", false, gossh.Marshal(&exitStatusRequest{Status: uint32(code)})); err != nil {
		sess.logger.Debug("send exit status", "err", err)
	}
}

// serve runs the Turku protocol (docs/protocol.md §5) and returns the exit status.
func (sess *session) serve(ctx context.Context, cmd string) int {
	s := sess.srv
	stderr := sess.ch.Stderr()
	alog := sessionlog.New(stderr, s.opts.StorageName, false, s.opts.Now)
	log := sess.logger
	log.Info("session started", "command", cmd)

	br := bufio.NewReader(sess.ch)
	type result struct {
		req *agentproto.Request
		err error
	}
	read := make(chan result, 1)
	sess.wg.Add(1)
	go func() {
		defer sess.wg.Done()
		defer func() {
			if v := recover(); v != nil { // a parser bug, fed by the agent
				log.Error("panic recovered reading the agent request", "err", fmt.Sprint(v), "stack", string(debug.Stack()))
				read <- result{nil, errInternal}
			}
		}()
		req, err := agentproto.Read(br)
		read <- result{req, err}
	}()
	var req *agentproto.Request
	select {
	case r := <-read:
		if r.err != nil {
			log.Warn("bad agent request", "err", r.err)
			alog.Errorf("Invalid request: %v", r.err)
			return 1
		}
		req = r.req
	case <-ctx.Done():
		return sess.ended(ctx, alog)
	}
	// LoginGraceTime and SessionRequestTimeout ran until here: a client
	// that authenticates and then sends nothing holds no session slot for
	// long.
	sess.conn.grace.Stop()
	sess.stated.Stop()

	alog = sessionlog.New(stderr, s.opts.StorageName, req.Verbose, s.opts.Now)
	// The tunnel logs the port itself.
	tlog := log.With("action", req.Action)
	release, ok := s.claim(sess.machine.UUID, req.Action, tlog, alog)
	if !ok {
		return 1
	}
	defer release()
	if req.Action != agentproto.ActionRestore {
		// Bounded by the fleet from here on (claim).
		sess.leaveMaxSessions()
	}
	fwd, ok := sess.conn.forwardFor(ctx, req.Port)
	if !ok {
		tlog.Warn("request names a port the connection did not forward", "port", req.Port)
		alog.Errorf("Port %d is not forwarded on this connection (ssh -R %d:127.0.0.1:%d)", req.Port, req.Port, req.Port)
		return 1
	}
	if req.Action == agentproto.ActionRestore {
		return sess.restore(ctx, fwd, br, alog, tlog)
	}
	return sess.checkin(ctx, fwd, req, alog, tlog)
}

// checkin hands the Puller a private endpoint carried to the agent's
// daemon; log carries no "port", which the tunnel adds.
func (sess *session) checkin(ctx context.Context, fwd forward, req *agentproto.Request, alog *sessionlog.Logger, log *slog.Logger) int {
	received, end := sess.srv.opts.Observer.SessionStarted(monitor.ModeCheckin, sess.machine.UUID, sess.machine.Info.UnitName,
		sess.conn.RemoteAddr().String(), int(fwd.Port), 0)
	defer end()
	ep, err := tunnel.Checkin(ctx, sess.sconn, fwd.BindAddr, fwd.Port, log, tunnel.CountReceived(received))
	if err != nil {
		log.Error("open checkin tunnel", "err", err)
		alog.Errorf("Storage unit could not open the tunnel")
		return 1
	}
	defer ep.Close()
	log = log.With("port", fwd.Port)
	began := time.Now()
	err = sess.pull(ctx, PullRequest{
		Machine:     sess.machine.UUID,
		Credentials: req.Sources,
		RsyncAddr:   ep.Addr().String(),
		Log:         alog,
	})
	if ctx.Err() != nil {
		return sess.ended(ctx, alog)
	}
	if err != nil {
		// The Puller told the agent what failed; the rest is ours.
		log.Error("checkin failed", "err", err, "duration", time.Since(began))
		return 1
	}
	log.Info("checkin done", "duration", time.Since(began))
	return 0
}

// restore opens 127.0.0.1:PORT for the operator's rsync until the agent
// closes its stdin or goes away; a PORT that cannot be opened fails the
// session (restoreRefused).
func (sess *session) restore(ctx context.Context, fwd forward, br *bufio.Reader, alog *sessionlog.Logger, log *slog.Logger) int {
	ep, err := tunnel.Restore(ctx, sess.sconn, fwd.BindAddr, fwd.Port, log, tunnel.Ports(sess.srv.tunnelPorts()))
	if err != nil {
		return restoreRefused(err, fwd.Port, sess.srv.tunnelPorts(), alog, log)
	}
	defer ep.Close()
	_, end := sess.srv.opts.Observer.SessionStarted(monitor.ModeRestore, sess.machine.UUID, sess.machine.Info.UnitName,
		sess.conn.RemoteAddr().String(), int(fwd.Port), ep.Port())
	defer end()
	log = log.With("port", fwd.Port)
	log.Info("restore mode active", "listen", ep.Addr().String(), "max_lifetime", sess.srv.opts.RestoreMaxLifetime)
	alog.RestoreActive(ep.Port())
	// A restore forgotten in a terminal holds its slot and a port: it
	// ends after RestoreMaxLifetime, and the agent is told why.
	ctx, cancel := context.WithTimeoutCause(ctx, sess.srv.opts.RestoreMaxLifetime, errRestoreLifetime)
	defer cancel()
	eof := make(chan struct{})
	sess.wg.Add(1)
	go func() {
		defer sess.wg.Done()
		io.Copy(io.Discard, br)
		close(eof)
	}()
	draining := false
	select {
	case <-eof:
	case <-ctx.Done():
	case <-sess.srv.draining:
		// Shutting down: a restore waits for nobody but the operator, so
		// it ends as soon as no transfer is running through it.
		draining = true
		select {
		case <-ep.Idle():
		case <-eof:
		case <-ctx.Done():
		}
	}
	if errors.Is(context.Cause(ctx), errRestoreLifetime) {
		log.Info("restore mode ended: time limit reached", "max_lifetime", sess.srv.opts.RestoreMaxLifetime)
		alog.Errorf("Restore mode ended: the storage unit's time limit of %s was reached", sess.srv.opts.RestoreMaxLifetime)
		return 1
	}
	alog.RestoreFinished()
	log.Info("restore mode finished", "shutdown", draining)
	if ctx.Err() != nil {
		return sess.ended(ctx, alog)
	}
	if draining {
		alog.Errorf("Session ended: %s", agentMessage(ErrShutdown))
		return 1
	}
	return 0
}

// ended tells the agent why its session was cut short, unless it is gone.
func (sess *session) ended(ctx context.Context, alog *sessionlog.Logger) int {
	cause := context.Cause(ctx)
	if errors.Is(cause, errConnClosed) {
		sess.logger.Info("agent disconnected")
		return 1
	}
	sess.logger.Warn("session ended early", "err", cause)
	alog.Errorf("Session ended: %s", agentMessage(cause))
	return 1
}
