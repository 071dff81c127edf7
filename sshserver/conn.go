package sshserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	glssh "github.com/gliderlabs/ssh"
)

// connKey holds the *conn in a gliderlabs connection context.
type connKeyType struct{}

var connKey connKeyType

// conn is one agent connection: the net.Conn gliderlabs reads and writes
// through, and our state about it.
//
// Deadlines are ours: before authentication LoginGraceTime bounds the whole
// handshake (a timer cancels the connection); afterwards every read and
// write must make progress within IdleTimeout. gliderlabs' own SetDeadline
// calls are ignored, since they would clear ours.
type conn struct {
	net.Conn
	srv    *Server
	log    atomic.Pointer[slog.Logger] // with "remote", and "machine"/"unit" once known
	ctx    context.Context
	cancel context.CancelCauseFunc

	idle          time.Duration
	authed        atomic.Bool
	readDeadline  atomic.Int64 // UnixNano when the read deadline was last moved
	writeDeadline atomic.Int64 // same for the write deadline
	// Read-ahead buffer, used by Read only: rbuf[rpos:rend] is unread.
	rbuf       []byte
	rpos, rend int
	raw        syscall.RawConn // the socket's, once needed (rawio_linux.go)
	rawOnce    sync.Once
	src        netip.Prefix // the source admission counts it against
	startup    sync.Once    // releases the admission slot
	authFailed atomic.Bool  // a key or user was refused
	overCap    atomic.Bool  // refused at MaxConnectionsPerMachine
	keysTried  atomic.Int32 // public keys offered, queries included
	departed   atomic.Bool  // a departed machine's key was offered (logged once)
	handshake  *time.Timer  // until the first key exchange is done
	grace      *time.Timer
	closeOnce  sync.Once
	kex        kexWatch // the handshake, for a client rejecting our host key

	mu          sync.Mutex // guards the fields below
	finished    bool       // no new work may start
	work        sync.WaitGroup
	machine     *Machine // set once, at authentication (under srv.mu too)
	counted     bool     // machine counts this connection (connectMachine)
	fingerprint string
	forwards    []forward
	fwdChanged  chan struct{} // closed and replaced when forwards grow
	session     bool          // a session channel was accepted
	running     bool          // that session has not ended
	timers      []*time.Timer
}

func (c *conn) logger() *slog.Logger { return c.log.Load() }

// connOf returns the conn of a gliderlabs connection context.
func connOf(gctx glssh.Context) *conn {
	return gctx.Value(connKey).(*conn)
}

// admit applies admission (admission.go) to a new connection and registers
// it. A stranger that must wait for a slot gets a waiter instead, for
// awaitSlot; both nil means it was dropped before the banner.
func (s *Server) admit(nc net.Conn) (*conn, *startupWaiter) {
	src := sourceOf(nc.RemoteAddr())
	ok, why, w := s.adm.admitOrWait(src, true)
	if w != nil {
		return nil, w
	}
	if !ok {
		s.refuse(nc, why)
		return nil, nil
	}
	return s.register(nc, src), nil
}

// refuse closes a connection admission dropped before the banner.
func (s *Server) refuse(nc net.Conn, why string) {
	// Summaries are logged by admission, one per source.
	s.logger.Debug("connection refused before the banner", "remote", nc.RemoteAddr().String(), "reason", why)
	s.opts.Observer.ConnectionDropped(dropReasons[why])
	nc.Close()
}

// awaitSlot waits until admission gives w a slot, startupWait passes or
// the server stops, and registers the connection if it got one.
func (s *Server) awaitSlot(nc net.Conn, w *startupWaiter) *conn {
	t := time.NewTimer(s.adm.waitFor())
	defer t.Stop()
	quiet := false
	select {
	case <-w.ready:
	case <-t.C:
	case <-s.base.Done():
		quiet = true
	case <-s.draining:
		quiet = true
	}
	if !s.adm.endWait(w, quiet) {
		if quiet {
			nc.Close()
		} else {
			s.refuse(nc, refusedWaited)
		}
		return nil
	}
	return s.register(nc, w.src)
}

// register makes a conn of a connection that holds an admission slot;
// nil once the server is closing.
func (s *Server) register(nc net.Conn, src netip.Prefix) *conn {
	remote := nc.RemoteAddr().String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		s.adm.release(src, outcomeNone)
		nc.Close()
		return nil
	}
	ctx, cancel := context.WithCancelCause(s.base)
	c := &conn{
		Conn:   nc,
		srv:    s,
		ctx:    ctx,
		cancel: cancel,
		idle:   s.opts.IdleTimeout,
		src:    src,

		fwdChanged: make(chan struct{}),
	}
	c.log.Store(s.logger.With("remote", remote))
	c.handshake = time.AfterFunc(s.opts.HandshakeTimeout, func() {
		c.logger().Debug("no key exchange within the handshake time, dropping")
		s.opts.Observer.ConnectionDropped(DropHandshake)
		c.cancel(errHandshakeTime)
	})
	c.grace = time.AfterFunc(s.opts.LoginGraceTime, func() {
		if c.authed.Load() {
			c.logger().Info("login grace time exceeded, dropping")
		} else {
			c.logger().Debug("login grace time exceeded, dropping")
		}
		s.opts.Observer.ConnectionDropped(DropLoginGrace)
		c.cancel(errLoginGrace)
	})
	// However the connection ends, a cancelled context closes it: at once
	// if no session runs, else after the session had closeGrace to tell
	// the agent why.
	context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.running || c.finished {
			c.closeNet()
			return
		}
		c.timers = append(c.timers, time.AfterFunc(s.closeGrace, c.closeNet))
	})
	s.conns[c] = struct{}{}
	return c
}

// connCallback binds the gliderlabs context to the conn admit made.
func (s *Server) connCallback(gctx glssh.Context, nc net.Conn) net.Conn {
	c := nc.(*conn)
	gctx.SetValue(connKey, c)
	// gliderlabs cancels its context when the connection closes or fails.
	context.AfterFunc(gctx, func() { c.cancel(errConnClosed) })
	return c
}

// finish runs after gliderlabs is done with the connection: it waits for
// our handlers and releases everything.
func (c *conn) finish() {
	c.mu.Lock()
	c.finished = true
	c.mu.Unlock()
	c.cancel(errConnClosed)
	c.work.Wait()
	c.handshake.Stop()
	c.grace.Stop()
	c.mu.Lock()
	for _, t := range c.timers {
		t.Stop()
	}
	c.mu.Unlock()
	c.closeNet()
	c.releaseStartup(c.outcome())
	c.mu.Lock()
	m, counted := c.machine, c.counted
	c.mu.Unlock()
	if counted {
		c.srv.disconnectMachine(*m)
	}
	c.srv.mu.Lock()
	delete(c.srv.conns, c)
	c.srv.mu.Unlock()
}

// startWork registers a handler; false means the connection is finishing.
func (c *conn) startWork() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return false
	}
	c.work.Add(1)
	return true
}

func (c *conn) doneWork() { c.work.Done() }

// releaseStartup gives back the admission slot, once: at authentication
// or when the connection ends.
func (c *conn) releaseStartup(how outcome) {
	c.startup.Do(func() { c.srv.adm.release(c.src, how) })
}

// outcome is how the connection ended, for penalties (admission.go).
func (c *conn) outcome() outcome {
	if c.authed.Load() {
		return outcomeAuthenticated
	}
	switch cause := context.Cause(c.ctx); {
	case errors.Is(cause, errLoginGrace), errors.Is(cause, errHandshakeTime):
		return outcomeGraceExceeded
	case errors.Is(cause, ErrShutdown):
		return outcomeNone
	}
	if c.overCap.Load() {
		// Refused for its machine's limit, not for a bad key: as for a
		// connection that never tried.
		return outcomeNoAuth
	}
	if c.authFailed.Load() {
		return outcomeAuthFail
	}
	return outcomeNoAuth
}

func (c *conn) closeNet() {
	c.closeOnce.Do(func() { c.Conn.Close() })
}

// hasSession reports whether a session is running on the connection.
func (c *conn) hasSession() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

// after runs f after d unless the connection finished first.
func (c *conn) after(d time.Duration, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return
	}
	c.timers = append(c.timers, time.AfterFunc(d, f))
}

// readBufferSize is how much one read(2) may take from the socket once the
// agent is authenticated. x/crypto reads each packet through a 4 KiB
// bufio.Reader, which costs two or three read(2) calls per 32 KiB packet;
// reading ahead here makes it one per several small packets. The body of
// a full data packet (32 KiB of channel data) is read in place instead.
const readBufferSize = 128 << 10

// Read and Write enforce the idle timeout once the agent is authenticated.
// Only the x/crypto transport's read loop calls Read, so rbuf needs no
// lock.
func (c *conn) Read(p []byte) (int, error) {
	if !c.authed.Load() {
		quickAck(c.Conn)
		n, err := c.Conn.Read(p)
		c.kex.read(p[:n], err, c.logger())
		return n, err
	}
	if c.rpos == c.rend {
		c.extendDeadline(&c.readDeadline, c.Conn.SetReadDeadline)
		if len(p) >= readBufferSize/4 {
			// The body of a large packet: read it in place rather
			// than through rbuf, one copy fewer.
			return c.readAuthed(p)
		}
		if c.rbuf == nil {
			c.rbuf = make([]byte, readBufferSize)
		}
		n, err := c.readAuthed(c.rbuf)
		c.rpos, c.rend = 0, n
		if n == 0 {
			return 0, err
		}
	}
	n := copy(p, c.rbuf[c.rpos:c.rend])
	c.rpos += n
	return n, nil
}

func (c *conn) Write(p []byte) (int, error) {
	if c.authed.Load() {
		c.extendDeadline(&c.writeDeadline, c.Conn.SetWriteDeadline)
		return c.writeAuthed(p)
	}
	c.kex.wrote(p)
	n, err := c.Conn.Write(p)
	c.kex.writeFailed(err, c.logger())
	return n, err
}

// extendDeadline moves a deadline to IdleTimeout from now, unless it was
// moved less than IdleTimeout/16 ago: resetting the runtime's timer on
// every read and write shows in the CPU profile of a busy tunnel, and the
// timeout need not be exact.
func (c *conn) extendDeadline(last *atomic.Int64, set func(time.Time) error) {
	now := time.Now()
	if now.UnixNano()-last.Load() < int64(c.idle/16) {
		return
	}
	last.Store(now.UnixNano())
	set(now.Add(c.idle))
}

// SetDeadline and friends ignore gliderlabs: with IdleTimeout 0 it clears
// the deadline before every read and write.
func (c *conn) SetDeadline(time.Time) error      { return nil }
func (c *conn) SetReadDeadline(time.Time) error  { return nil }
func (c *conn) SetWriteDeadline(time.Time) error { return nil }
