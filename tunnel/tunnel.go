package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	gossh "golang.org/x/crypto/ssh"
)

// Opener opens channels to the SSH peer; a *gossh.ServerConn is one.
type Opener interface {
	OpenChannel(name string, data []byte) (gossh.Channel, <-chan *gossh.Request, error)
}

// ChannelType is the channel type of a reverse-forwarded connection.
const ChannelType = "forwarded-tcpip"

// forwardedTCPPayload is the type-specific data of a "forwarded-tcpip"
// channel open, RFC 4254 §7.2. OpenSSH's client accepts the channel only if
// Addr and Port equal, byte for byte, what its "tcpip-forward" asked for.
type forwardedTCPPayload struct {
	Addr       string // address that was connected
	Port       uint32 // port that was connected
	OriginAddr string // originator IP address
	OriginPort uint32 // originator port
}

// Endpoint is a local TCP listener whose connections are forwarded to the
// agent as "forwarded-tcpip" channels. It owns its listener. Create it with
// Forward, Checkin or Restore; it stops when its context ends or Close is
// called.
type Endpoint struct {
	ln       net.Listener
	conn     Opener
	bindAddr string
	port     uint32
	logger   *slog.Logger
	// admit, when set, vets each accepted connection before anything is
	// sent to the agent; ownProcess says whether this process's own
	// sockets may pass (never outside tests).
	admit func(c net.Conn, ownProcess bool) error
	// received, when set, is told of the agent's bytes as they flow.
	received func(n int64)
	// ports is the range a restore port must be in (Ports).
	ports PortRange
	// ownProcess, set only by this package's tests, admits connections
	// made by this process itself, as the tests make them.
	ownProcess bool
	// refusals summarises refused connections in the log; onRefused,
	// set only by tests, hears of each.
	refusals  *refusalLog
	onRefused func(error)
	// checking bounds the admission checks running at once.
	checking chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	stop   func() bool // unregisters the listener-closing AfterFunc
	wg     sync.WaitGroup

	// Counters for the closing log line; updated by the copy goroutines.
	conns    atomic.Int64
	bytesIn  atomic.Int64 // agent to local
	bytesOut atomic.Int64 // local to agent

	closeOnce sync.Once

	mu     sync.Mutex    // guards active and idle
	active int           // forwarded connections open now
	idle   chan struct{} // closed while active is 0
}

// Forward starts carrying every connection accepted on ln to conn as a
// "forwarded-tcpip" channel whose "address/port that was connected" are
// bindAddr and port exactly as the agent's "tcpip-forward" request gave
// them. The Endpoint takes ownership of ln.
func Forward(ctx context.Context, ln net.Listener, conn Opener, bindAddr string, port uint32, logger *slog.Logger, opts ...Option) *Endpoint {
	return forward(ctx, ln, conn, bindAddr, port, logger, nil, opts)
}

// Option adjusts an Endpoint.
type Option func(*Endpoint)

// CountReceived has f told of the bytes carried from the agent, as they
// are written to the local side (metrics and live status count them).
func CountReceived(f func(n int64)) Option {
	return func(e *Endpoint) { e.received = f }
}

// maxChecking is how many accepted connections an Endpoint checks at
// once: a flood of refused local connections must not queue the
// operator's behind it, nor start a goroutine per connection.
const maxChecking = 32

func forward(ctx context.Context, ln net.Listener, conn Opener, bindAddr string, port uint32, logger *slog.Logger, admit func(net.Conn, bool) error, opts []Option) *Endpoint {
	ctx, cancel := context.WithCancel(ctx)
	e := &Endpoint{
		ln:       ln,
		conn:     conn,
		bindAddr: bindAddr,
		port:     port,
		logger:   logger.With("port", port, "listen", ln.Addr().String()),
		admit:    admit,
		ports:    DefaultPorts,
		checking: make(chan struct{}, maxChecking),
		ctx:      ctx,
		cancel:   cancel,
	}
	for _, o := range opts {
		o(e)
	}
	e.refusals = newRefusalLog(e.logger, refusalInterval)
	e.stop = context.AfterFunc(ctx, func() { ln.Close() })
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.accept()
	}()
	return e
}

// Checkin returns an Endpoint on a loopback port chosen by the kernel, never
// the agent's own PORT: two agents may pick the same PORT at once
// (docs/protocol.md §5.3 step 5). Addr is what rsync must connect to.
// On Linux it admits only the one connection each rsync run of ours makes
// (a direct child of this process, or this process itself), while that
// rsync runs; see rsyncAdmitter.
func Checkin(ctx context.Context, conn Opener, bindAddr string, port uint32, logger *slog.Logger, opts ...Option) (*Endpoint, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for checkin tunnel: %w", err)
	}
	return forward(ctx, ln, conn, bindAddr, port, logger, newRsyncAdmitter().admit, opts), nil
}

// Restore returns an Endpoint on 127.0.0.1:port, where the operator's rsync
// expects the agent (docs/protocol.md §5.4). It admits only connections of
// our own user or root, and never one of this process's own (serve's API
// calls, say). A port outside the tunnel port range (DefaultPorts, or
// Ports) is refused (ErrRestorePortOutOfRange), and so is a port that
// cannot be bound (ErrRestorePortTaken): the agent told the operator that
// port, so no other will do.
func Restore(ctx context.Context, conn Opener, bindAddr string, port uint32, logger *slog.Logger, opts ...Option) (*Endpoint, error) {
	probe := Endpoint{ports: DefaultPorts}
	for _, o := range opts {
		o(&probe)
	}
	if !probe.ports.Valid() || !probe.ports.Contains(port) {
		return nil, fmt.Errorf("restore port %d, tunnel ports %s: %w", port, probe.ports, ErrRestorePortOutOfRange)
	}
	var lc net.ListenConfig
	want := net.JoinHostPort("127.0.0.1", strconv.FormatUint(uint64(port), 10))
	ln, err := lc.Listen(ctx, "tcp", want)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("restore port %d: %w: %w", port, ErrRestorePortTaken, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listen for restore tunnel on port %d: %w", port, err)
	}
	return forward(ctx, ln, conn, bindAddr, port, logger, restoreAdmit, opts), nil
}

// Addr returns the local address connections must be made to.
func (e *Endpoint) Addr() net.Addr { return e.ln.Addr() }

// Port returns the local port of Addr.
func (e *Endpoint) Port() int { return e.ln.Addr().(*net.TCPAddr).Port }

// Close stops accepting, closes every forwarded connection and waits for the
// Endpoint's goroutines to finish.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.cancel()
		e.wg.Wait()
		e.logger.Debug("tunnel closed", "conns", e.conns.Load(),
			"bytes_in", e.bytesIn.Load(), "bytes_out", e.bytesOut.Load())
	})
	return nil
}

func (e *Endpoint) accept() {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if e.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				e.logger.Error("tunnel accept failed", "err", err)
			}
			e.cancel()
			return
		}
		if e.admit == nil {
			e.start(c)
			continue
		}
		// Each connection is checked on its own goroutine, a bounded
		// number at once, so that a slow check (a process with many
		// files, or a flood of them) holds up no other connection.
		select {
		case e.checking <- struct{}{}:
		case <-e.ctx.Done():
			c.Close()
			continue // Accept fails next: the listener is closed
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			err := e.admit(c, e.ownProcess)
			<-e.checking
			if err != nil {
				e.refusals.refused(e, c.RemoteAddr().String(), err)
				c.Close()
				return
			}
			e.start(c)
		}()
	}
}

// start carries an admitted connection on a goroutine of its own.
func (e *Endpoint) start(c net.Conn) {
	if e.ctx.Err() != nil {
		c.Close()
		return
	}
	e.conns.Add(1)
	e.busy(+1)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer e.busy(-1)
		e.carry(c)
	}()
}

// busy counts open forwarded connections and keeps idle in step.
func (e *Endpoint) busy(delta int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.idle == nil {
		e.idle = closedChan()
	}
	if e.active == 0 && delta > 0 {
		e.idle = make(chan struct{})
	}
	e.active += delta
	if e.active == 0 && delta < 0 {
		close(e.idle)
	}
}

// Idle returns a channel that is closed while no forwarded connection is
// open (an operator's restore rsync, for instance). A connection that opens
// later is not seen by a channel already returned.
func (e *Endpoint) Idle() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.idle == nil {
		e.idle = closedChan()
	}
	return e.idle
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// carry forwards one accepted connection until both directions are done or
// the Endpoint stops.
func (e *Endpoint) carry(c net.Conn) {
	defer c.Close()
	logger := e.logger.With("peer", c.RemoteAddr().String())
	origin, _ := c.RemoteAddr().(*net.TCPAddr)
	payload := forwardedTCPPayload{Addr: e.bindAddr, Port: e.port}
	if origin != nil {
		payload.OriginAddr = origin.IP.String()
		payload.OriginPort = uint32(origin.Port)
	}
	ch, reqs, err := e.conn.OpenChannel(ChannelType, gossh.Marshal(&payload))
	if err != nil {
		if e.ctx.Err() == nil {
			logger.Warn("agent refused tunnel channel", "err", err)
		}
		return
	}
	defer ch.Close()

	discarded := make(chan struct{})
	go func() {
		defer close(discarded)
		gossh.DiscardRequests(reqs)
	}()
	// Ending the Endpoint ends every copy: closing both sides unblocks them.
	stop := context.AfterFunc(e.ctx, func() {
		c.Close()
		ch.Close()
	})
	defer stop()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		n, err := io.Copy(ch, c)
		e.bytesOut.Add(n)
		e.copyError(logger, "to agent", err)
		// Half-close: the agent's daemon sees EOF, its replies still flow.
		_ = ch.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		// The channel's WriteTo (third_party/x/crypto, see
		// docs/x-crypto-patch.md) writes each packet to the local socket
		// from x/crypto's read loop as it arrives, and what the socket
		// does not take at once with one writev(2), without copying it.
		var dst io.Writer = c
		counted := func(int64) {}
		if e.received != nil {
			dst, counted = countReceived(c, e.received)
		}
		n, err := io.Copy(dst, ch)
		counted(n)
		e.bytesIn.Add(n)
		e.copyError(logger, "from agent", err)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	// Both directions must finish before anything is closed, else bytes in
	// flight would be cut off.
	wg.Wait()
	ch.Close()
	c.Close()
	// The request channel is closed once the agent acknowledged the close
	// or the SSH connection ended. An agent that never acknowledges must not
	// hold up Close: the discarder then ends with the SSH connection, and it
	// touches nothing of the Endpoint's.
	select {
	case <-discarded:
	case <-e.ctx.Done():
	}
}

// copyError logs a copy failure that is not the Endpoint's own doing.
func (e *Endpoint) copyError(logger *slog.Logger, dir string, err error) {
	if err == nil || e.ctx.Err() != nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return
	}
	logger.Warn("tunnel copy failed", "direction", dir, "err", err)
}

// countingWriter tells count of every write as it happens, so a running
// transfer's progress is visible before the copy ends. Being a plain
// Writer, it also hides c's ReadFrom.
type countingWriter struct {
	w     io.Writer
	count func(int64)
}

// Write counts p before writing it, so whoever read the bytes sees them
// counted, and takes back what was not written.
func (w countingWriter) Write(p []byte) (int, error) {
	w.count(int64(len(p)))
	n, err := w.w.Write(p)
	if n < len(p) {
		w.count(int64(n - len(p)))
	}
	return n, err
}
