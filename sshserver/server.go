package sshserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	glssh "github.com/gliderlabs/ssh"
	"github.com/turku-backup/turku-storage/agentproto"
	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/tunnel"
	gossh "golang.org/x/crypto/ssh"
)

// Puller runs a checkin: it asks the coordinator what is due and pulls each
// source with rsync from req.RsyncAddr. It writes its own agent-facing lines
// to req.Log; its error only makes the exit status 1 and goes to the server
// log. *backup.Engine is one; serve hands it its current engine.
type Puller interface {
	Pull(ctx context.Context, req PullRequest) error
}

// PullRequest is one agent's checkin; backup.Request is the same type, so
// a *backup.Engine is a Puller as it is.
type PullRequest = agentproto.Checkin

// Causes a session or connection ended, as context.Cause reports them and
// as the agent reads them ("Session ended: machine revoked").
// Those the agent may read are declared with newAgentError (agenterror.go).
var (
	ErrMachineRevoked = newAgentError("machine revoked")
	ErrShutdown       = newAgentError("shutdown")
	// ErrServerClosed is returned by Serve after Shutdown.
	ErrServerClosed = errors.New("sshserver: server closed")

	errConnClosed      = errors.New("connection closed") // nobody left to tell
	errSessionDone     = errors.New("session ended")     // after the exit status
	errLoginGrace      = newAgentError("login grace time exceeded")
	errHandshakeTime   = newAgentError("handshake time exceeded")
	errTooManyKeys     = newAgentError("too many public keys offered")
	errTooManySessions = newAgentError("too many sessions")
	errRestoreLifetime = newAgentError("restore time limit reached")
	errMachineConns    = newAgentError("too many connections for this machine")
	errRequestTime     = newAgentError("no request within the session request time")
)

// Defaults, after OpenSSH's sshd where it has one.
const (
	DefaultLoginGraceTime = 30 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultMaxAuthTries   = 6 // sshd
	DefaultMaxSessions    = 100
	DefaultMaxForwards    = 4
	// An agent needs one connection and one session; a checkin and a
	// restore of the same machine may overlap, and a new run may start
	// while the last one's connection closes.
	DefaultMaxConnectionsPerMachine = 4
	DefaultMaxSessionsPerMachine    = 2
	// DefaultSessionRequestTimeout bounds the time from a session's
	// opening to the agent's request read in full; the agent sends both
	// at once.
	DefaultSessionRequestTimeout = 5 * time.Second
	// DefaultRestoreMaxLifetime ends a forgotten restore session.
	DefaultRestoreMaxLifetime = 3 * time.Hour
)

// Options configure a Server. Zero durations and counts take the defaults
// above.
type Options struct {
	// HostSigners are the host keys, e.g. from LoadOrCreateHostKey; agents
	// pin them through ssh_ping_host_keys. Required: the server never
	// invents one.
	HostSigners []gossh.Signer
	// User is ssh_ping_user; any other login name is refused.
	User string
	// StorageName tags the lines the agent sees.
	StorageName string
	// Puller runs checkins. Required.
	Puller Puller
	// Machines is the initial key set; SetMachines replaces it.
	Machines map[string]apiclient.MachineInfo
	// Logger receives the server's own log. Nil discards.
	Logger *slog.Logger
	// Now stamps the agent's log lines and times source penalties; nil
	// is time.Now.
	Now func() time.Time

	// LoginGraceTime bounds the time from connect to a running command,
	// authentication included (sshd LoginGraceTime).
	LoginGraceTime time.Duration
	// IdleTimeout drops a connection that sent nothing for this long. The
	// server sends keepalive@openssh.com every IdleTimeout/3 during a
	// session, which a live OpenSSH client answers (sshd
	// ClientAliveInterval × ClientAliveCountMax).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the version exchange and first key
	// exchange, within LoginGraceTime.
	HandshakeTimeout time.Duration
	// MaxStartups caps concurrent unauthenticated connections with random
	// early drop (see admission.go); zero is DefaultMaxStartups.
	MaxStartups MaxStartups
	// PerSourceMaxStartups caps unauthenticated connections per IPv4
	// address or IPv6 /64.
	PerSourceMaxStartups int
	// Penalties are what misbehaving sources earn; zero fields take
	// DefaultPenalties.
	Penalties Penalties
	// KnownSourcesFile is where the addresses that authenticated within
	// the last day are kept across restarts (knownsources.go), e.g.
	// VAR_DIR/history/known-sources. Empty keeps them in memory only.
	KnownSourcesFile string
	// TrustedNetworks are never penalised nor held to the per-source
	// limit (the operator's own networks).
	TrustedNetworks []netip.Prefix
	// MaxAuthTries caps failed authentication attempts per connection,
	// and public keys offered per connection, queries included.
	MaxAuthTries int
	// MaxSessions caps sessions running at once across all connections;
	// restore sessions may take at most half of them, so checkins always
	// find room. A checkin leaves them once it has stated its request:
	// it may wait hours for a backup slot, and checkins are bounded by
	// the fleet instead, one per machine (see claim). A new session that
	// finds them all taken waits for one, at most SessionRequestTimeout,
	// first come first served.
	MaxSessions int
	// RestoreMaxLifetime ends a restore session after this long.
	RestoreMaxLifetime time.Duration
	// MaxConnectionsPerMachine caps the authenticated connections of one
	// machine; a further one is closed at authentication and its source
	// earns the no-authentication penalty.
	MaxConnectionsPerMachine int
	// MaxSessionsPerMachine caps the sessions of one machine, applied
	// before a session takes one of MaxSessions.
	MaxSessionsPerMachine int
	// SessionRequestTimeout bounds the time from a session's opening to
	// its command and the agent's request, read in full.
	SessionRequestTimeout time.Duration
	// MaxForwards caps reverse forwards per connection; the agent asks one.
	MaxForwards int
	// TunnelPorts are the ports a reverse forward may name (and a restore
	// listen on); zero is tunnel.DefaultPorts, an invalid range admits
	// none (forward.go).
	TunnelPorts PortRange
	// Ciphers overrides the cipher list (see algorithms.go).
	Ciphers []string

	// Observer is told of failed logins, dropped connections and
	// sessions; nil tells no one.
	Observer Observer
	// Heartbeat, when set, is called from the accept loop at least every
	// HeartbeatInterval while it runs (systemd's watchdog; see
	// observe.go).
	Heartbeat         func()
	HeartbeatInterval time.Duration
	// released, for tests, is called after admission took back a
	// connection's slot and applied its outcome.
	released func(src netip.Prefix)
	// sessionWait, for tests, bounds how long a new session waits for one
	// of MaxSessions; zero is SessionRequestTimeout.
	sessionWait time.Duration
}

// Server is the embedded SSH server.
type Server struct {
	opts   Options
	logger *slog.Logger
	gl     *glssh.Server
	keys   atomic.Pointer[KeyStore]
	// departed are the keys of machines no longer assigned here
	// (SetDeparted): still refused, but named in the log.
	departed atomic.Pointer[KeyStore]

	adm *admission
	// sessions holds a token for each session counted against
	// MaxSessions: running sessions, less the stated checkins.
	sessions chan struct{}
	restores atomic.Int64 // running restore sessions, also in sessions
	// busy holds machine+"\x00"+action for each running checkin and
	// restore: one of each per machine.
	busyMu sync.Mutex
	busy   map[string]bool
	// use counts each machine's connections and sessions by UUID
	// (machinelimits.go).
	useMu sync.Mutex
	use   map[string]*machineUse

	// Test hooks: how long a connection may stay after its session ended,
	// how long a cancelled session has to say goodbye before its
	// connection is cut, and how long a session waits for its forward.
	linger      time.Duration
	closeGrace  time.Duration
	forwardWait time.Duration

	// draining is closed when Shutdown starts: restore sessions, which
	// otherwise last until the operator ends them, then end once idle.
	draining chan struct{}

	mu      sync.Mutex // guards the fields below and bindings in conns
	ln      net.Listener
	closing bool
	conns   map[*conn]struct{}
	base    context.Context // parent of every connection's context
	stop    context.CancelCauseFunc
	wg      sync.WaitGroup // the accept loop and connection goroutines
}

// New checks opts and returns a Server ready to Serve.
func New(opts Options) (*Server, error) {
	if len(opts.HostSigners) == 0 {
		return nil, errors.New("sshserver: no host key")
	}
	if opts.User == "" {
		return nil, errors.New("sshserver: no ssh_ping_user")
	}
	if opts.Puller == nil {
		return nil, errors.New("sshserver: no Puller")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	setDefault(&opts.HeartbeatInterval, 10*time.Second)
	setDefault(&opts.LoginGraceTime, DefaultLoginGraceTime)
	setDefault(&opts.IdleTimeout, DefaultIdleTimeout)
	setDefault(&opts.HandshakeTimeout, DefaultHandshakeTimeout)
	if opts.MaxStartups == (MaxStartups{}) {
		opts.MaxStartups = DefaultMaxStartups
	}
	if m := opts.MaxStartups; m.Full < 1 || m.Start < 1 || m.Start > m.Full || m.Rate < 0 || m.Rate > 100 {
		return nil, fmt.Errorf("sshserver: MaxStartups %d:%d:%d: want 1 <= start <= full and rate 0..100", m.Start, m.Rate, m.Full)
	}
	setDefault(&opts.PerSourceMaxStartups, DefaultPerSourceMaxStartups)
	setDefault(&opts.Penalties.AuthFail, DefaultPenalties.AuthFail)
	setDefault(&opts.Penalties.NoAuth, DefaultPenalties.NoAuth)
	setDefault(&opts.Penalties.GraceExceeded, DefaultPenalties.GraceExceeded)
	setDefault(&opts.Penalties.Min, DefaultPenalties.Min)
	setDefault(&opts.Penalties.Max, DefaultPenalties.Max)
	setDefault(&opts.MaxAuthTries, DefaultMaxAuthTries)
	setDefault(&opts.MaxSessions, DefaultMaxSessions)
	setDefault(&opts.MaxForwards, DefaultMaxForwards)
	setDefault(&opts.MaxConnectionsPerMachine, DefaultMaxConnectionsPerMachine)
	setDefault(&opts.MaxSessionsPerMachine, DefaultMaxSessionsPerMachine)
	setDefault(&opts.SessionRequestTimeout, DefaultSessionRequestTimeout)
	setDefault(&opts.RestoreMaxLifetime, DefaultRestoreMaxLifetime)
	setDefault(&opts.sessionWait, opts.SessionRequestTimeout)
	if len(opts.Ciphers) == 0 {
		opts.Ciphers = cipherAlgorithms
	}
	s := &Server{
		opts:        opts,
		logger:      opts.Logger,
		conns:       map[*conn]struct{}{},
		linger:      5 * time.Second,
		closeGrace:  5 * time.Second,
		forwardWait: defaultForwardWait,
		draining:    make(chan struct{}),
		busy:        map[string]bool{},
		sessions:    make(chan struct{}, opts.MaxSessions),
		use:         map[string]*machineUse{},
	}
	s.adm = newAdmission(s)
	s.keys.Store(NewKeyStore(opts.Machines, s.logger))
	s.gl = &glssh.Server{
		HostSigners: signers(opts.HostSigners),
		Version:     "TurkuStorage",
		// Must be set: without any auth handler gliderlabs lets everyone in.
		PublicKeyHandler:     s.publicKeyHandler,
		ServerConfigCallback: s.serverConfig,
		ConnCallback:         s.connCallback,
		// Port probes, ssh-keyscan and scanners end here before
		// authentication: nothing for the operator to act on.
		ConnectionFailedCallback: func(c net.Conn, err error) {
			s.logger.Debug("connection failed", "remote", c.RemoteAddr().String(), "err", err)
		},
		// Unused (our session handler ignores them) but denied in case.
		PtyCallback: func(glssh.Context, glssh.Pty) bool { return false },
		Handler:     func(sess glssh.Session) { sess.Exit(1) },
		// Explicit maps, so gliderlabs' package-level defaults never apply.
		// Each handler through request or channel: the connection's
		// bookkeeping (its work, a recovered panic) in one place.
		ChannelHandlers: map[string]glssh.ChannelHandler{
			"session":                        s.channel(s.handleSession),
			"direct-tcpip":                   s.channel(s.denyForwardChannel),
			"direct-streamlocal@openssh.com": s.channel(s.denyForwardChannel),
			"default":                        s.channel(s.denyChannel),
		},
		RequestHandlers: map[string]glssh.RequestHandler{
			"tcpip-forward":        s.request(s.handleTCPIPForward),
			"cancel-tcpip-forward": s.request(s.handleCancelTCPIPForward),
			"default":              s.request(s.denyGlobalRequest),
		},
		SubsystemHandlers: map[string]glssh.SubsystemHandler{},
		// Deadlines are ours (see conn); gliderlabs' would reset them.
		IdleTimeout: 0,
		MaxTimeout:  0,
	}
	return s, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func signers(in []gossh.Signer) []glssh.Signer {
	out := make([]glssh.Signer, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

// serverConfig is the x/crypto configuration of one connection; gliderlabs
// adds the host keys and the PublicKeyCallback wrapping publicKeyHandler.
func (s *Server) serverConfig(gctx glssh.Context) *gossh.ServerConfig {
	c := connOf(gctx)
	return &gossh.ServerConfig{
		Config: gossh.Config{
			KeyExchanges: kexAlgorithms,
			Ciphers:      s.opts.Ciphers,
			MACs:         macAlgorithms,
		},
		MaxAuthTries: s.opts.MaxAuthTries,
		// Called once the first key exchange is done.
		PreAuthConnCallback:     func(gossh.ServerPreAuthConn) { c.handshake.Stop() },
		PublicKeyAuthAlgorithms: gossh.SupportedAlgorithms().PublicKeyAuths, // no SHA-1 ssh-rsa
		VerifiedPublicKeyCallback: func(meta gossh.ConnMetadata, key gossh.PublicKey, _ *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			return s.verifiedKey(c, meta, key)
		},
		AuthLogCallback: func(meta gossh.ConnMetadata, method string, err error) {
			if err != nil && method != "none" && !errors.Is(err, errMachineConns) {
				s.opts.Observer.AuthFailed()
				c.authFailed.Store(true)
				c.logger().Debug("authentication attempt failed", "user", meta.User(), "method", method, "err", err)
			}
		},
	}
}

// SetMachines replaces the set of machines that may log in. Connections
// whose key no longer belongs to the same machine end with cause
// ErrMachineRevoked.
func (s *Server) SetMachines(m map[string]apiclient.MachineInfo) {
	ks := NewKeyStore(m, s.logger)
	s.logger.Debug("machine keys replaced", "machines", ks.Len())
	s.adm.setFleet(ks.Len())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys.Store(ks)
	for c := range s.conns {
		c.mu.Lock()
		bound, fp := c.machine, c.fingerprint
		c.mu.Unlock()
		if bound == nil {
			continue
		}
		if m, ok := ks.LookupFingerprint(fp); ok && m.UUID == bound.UUID {
			continue
		}
		c.logger().Warn("machine revoked, ending its connection")
		c.cancel(ErrMachineRevoked)
	}
}

// Serve accepts connections on ln until Shutdown is called, ctx ends or ln
// fails, and returns once all its connections are gone. As with net/http,
// it returns ErrServerClosed after Shutdown (at once if Shutdown came
// first), else the accept error. ctx ending is an immediate stop: every
// session is cancelled with shutdownCause(ctx), and Serve returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.ln != nil {
		s.mu.Unlock()
		return errors.New("sshserver: Serve called twice")
	}
	s.ln = ln
	s.base, s.stop = context.WithCancelCause(context.WithoutCancel(ctx))
	s.wg.Add(1) // the accept loop; connection goroutines are added under it
	s.mu.Unlock()
	defer func() {
		s.wg.Wait()
		// Once every connection is gone: the last authentications too.
		s.saveKnownFile()
	}()
	defer s.wg.Done()

	stop := context.AfterFunc(ctx, func() {
		s.stop(shutdownCause(ctx))
		ln.Close()
	})
	defer stop()

	s.loadKnownFile()
	// Ends when the accept loop does (deferred after wg.Done).
	saveCtx, endSaves := context.WithCancel(s.base)
	defer endSaves()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.saveKnownLoop(saveCtx)
	}()

	var backoff time.Duration
	hb := &heartbeat{s: s, ln: ln}
	for {
		hb.arm()
		nc, err := ln.Accept()
		if hb.beat(err) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if s.isClosing() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				s.logger.Error("listener closed under the server", "err", err)
				s.stop(ErrShutdown)
				return fmt.Errorf("sshserver: accept: %w", err)
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger.Warn("accept failed, retrying", "err", err)
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return nil
			}
		}
		backoff = 0
		c, w := s.admit(nc)
		if c == nil && w == nil {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if w != nil {
				if c = s.awaitSlot(nc, w); c == nil {
					return
				}
			}
			s.handleConn(c)
			c.finish()
		}()
	}
}

// Addr returns the listening address, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, drops connections that run no session, and
// waits for the running sessions to end, like net/http's. When ctx ends
// first, the sessions are cancelled with shutdownCause(ctx) — the agent
// reads it ("Session ended: shutdown deadline passed" when the caller's
// context.WithTimeoutCause says so) — and Shutdown returns ctx's error once
// they are gone.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.draining)
	}
	s.closing = true
	ln := s.ln
	for c := range s.conns {
		if !c.hasSession() {
			c.cancel(ErrShutdown)
		}
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		if s.stop != nil {
			s.stop(shutdownCause(ctx))
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// shutdownCause is why sessions end when ctx, a shutdown context, ended:
// its cause when it has one, as an ErrShutdown. The caller gave that
// cause for the agent to read, so all of it is agent-visible.
func shutdownCause(ctx context.Context) error {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ErrShutdown):
		return &agentError{cause}
	case cause == nil || cause == context.Canceled || cause == context.DeadlineExceeded:
		return ErrShutdown
	}
	return &agentError{fmt.Errorf("%w: %w", ErrShutdown, cause)}
}

// PortRange is an inclusive range of agent ports (tunnel.PortRange), so
// that callers set Options.TunnelPorts without importing tunnel.
type PortRange = tunnel.PortRange
