package sshserver

import (
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Admission before authentication, after OpenSSH's MaxStartups,
// PerSourceMaxStartups, PerSourceNetBlockSize and PerSourcePenalties
// (sshd_config(5)), decided before the server sends its version line:
//
//   - A source is an IPv4 address or an IPv6 /64 (one host's usual share).
//   - Each source may hold PerSourceMaxStartups unauthenticated connections.
//   - Globally, strangers are dropped at random from MaxStartups.Start on,
//     with a probability rising from Rate% to 100% at the stranger limit,
//     which is Full less a quarter kept for known sources: those that
//     authenticated within knownFor. Known sources are never dropped at
//     random and may use every slot up to Full.
//   - Failed authentications, refused connections and connections that end
//     before authentication add to the source's penalty; once it exceeds
//     Penalties.Min the source is refused before the banner until it has
//     served it. Each further penalty within a day is at least twice the
//     last, and none is longer than Penalties.Max.
//   - Trusted networks skip all of the per-source rules (the operator's own
//     networks, or many agents behind one NAT address).

// MaxStartups is sshd's start:rate:full: from Start unauthenticated
// connections on, new ones are dropped with probability Rate% rising
// linearly to 100% at Full.
type MaxStartups struct {
	Start, Rate, Full int
}

// Penalties are what a source earns, as sshd's PerSourcePenalties.
type Penalties struct {
	// AuthFail is earned by a connection that offered a key or user that
	// was refused and never authenticated.
	AuthFail time.Duration
	// NoAuth is earned by a connection that ended before authentication
	// without trying (port probes, ssh-keyscan), and by a connection
	// refused at the per-source limit.
	NoAuth time.Duration
	// GraceExceeded is earned by a connection that ran out of handshake
	// or login grace time.
	GraceExceeded time.Duration
	// Min is how much must accrue before the source is refused; Max caps
	// how long it is refused.
	Min, Max time.Duration
}

// Defaults for admission. sshd's MaxStartups is 10:30:100; ours starts
// later because a burst of agents on the same minute is normal here (see
// docs/operations.md), and known sources skip the random drop anyway.
var (
	DefaultMaxStartups = MaxStartups{Start: 30, Rate: 30, Full: 100}
	// sshd's PerSourcePenalties defaults (OpenSSH 9.8), grace-exceeded
	// halved since our handshake deadline is short.
	DefaultPenalties = Penalties{
		AuthFail:      5 * time.Second,
		NoAuth:        time.Second,
		GraceExceeded: 10 * time.Second,
		Min:           15 * time.Second,
		Max:           10 * time.Minute,
	}
)

const (
	DefaultPerSourceMaxStartups = 10
	// DefaultHandshakeTimeout bounds the version exchange and first key
	// exchange; LoginGraceTime then bounds authentication.
	DefaultHandshakeTimeout = 10 * time.Second
	// knownFor is how long a successful authentication makes a source
	// known.
	knownFor = 24 * time.Hour
	// strikesFor is how long a served penalty still doubles the next.
	strikesFor = 24 * time.Hour
	// maxSources bounds the sources remembered; past it new penalties are
	// not recorded (the per-connection limits still apply).
	maxSources = 1 << 16
	// summaryEvery spaces the warnings about global drops.
	summaryEvery = time.Minute
)

// Refusal reasons, as logged.
const (
	refusedPenalty   = "penalty"
	refusedPerSource = "per-source limit"
	refusedFull      = "full"
	refusedEarlyDrop = "random early drop"
)

// outcome is how an unauthenticated connection ended, for penalties.
type outcome int

const (
	outcomeAuthenticated outcome = iota
	outcomeNoAuth
	outcomeAuthFail
	outcomeGraceExceeded
	outcomeNone // ended by us (shutdown): no penalty
)

// sourceState is what admission knows about one source.
type sourceState struct {
	startups int       // unauthenticated connections held
	lastAuth time.Time // last successful authentication
	penalty  time.Time // accrued penalty runs until then
	active   bool      // refused until penalty
	strikes  int       // penalties served; each doubles the next
	refused  int       // connections refused during the active penalty
	reasons  map[string]int
}

// admission decides which connections get a banner.
type admission struct {
	start, rate, full int
	strangerFull      int
	perSource         int
	pen               Penalties
	trusted           []netip.Prefix
	now               func() time.Time
	rand              func(n int) int // [0, n); tests make it fixed
	server            *Server         // for the log

	mu        sync.Mutex // guards the fields below
	total     int        // unauthenticated connections held
	sources   map[netip.Prefix]*sourceState
	dropped   map[string]int // global drops since the last warning
	lastWarn  time.Time
	lastSweep time.Time
}

func newAdmission(s *Server) *admission {
	o := s.opts
	full := o.MaxStartups.Full
	a := &admission{
		start:        o.MaxStartups.Start,
		rate:         o.MaxStartups.Rate,
		full:         full,
		strangerFull: max(full-full/4, 1),
		perSource:    o.PerSourceMaxStartups,
		pen:          o.Penalties,
		trusted:      o.TrustedNetworks,
		now:          o.Now,
		rand:         rand.IntN,
		server:       s,
		sources:      map[netip.Prefix]*sourceState{},
		dropped:      map[string]int{},
	}
	a.start = min(a.start, a.strangerFull)
	return a
}

// sourceOf is the source a remote address counts against: the address for
// IPv4 (also IPv4-mapped IPv6), its /64 for IPv6.
func sourceOf(addr net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

func (a *admission) isTrusted(src netip.Prefix) bool {
	for _, n := range a.trusted {
		if n.Contains(src.Addr()) {
			return true
		}
	}
	return false
}

// admit reports whether a new connection from src may proceed, and if
// not, why. An admitted connection holds a slot until release.
func (a *admission) admit(src netip.Prefix) (bool, string) {
	now := a.now()
	trusted := a.isTrusted(src)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweep(now)
	st := a.sources[src]
	known := st != nil && !st.lastAuth.IsZero() && now.Sub(st.lastAuth) < knownFor
	if !trusted && st != nil && st.active {
		if now.Before(st.penalty) {
			st.refused++
			return false, refusedPenalty
		}
		a.penaltyOver(src, st)
	}
	if !trusted && st != nil && st.startups >= a.perSource {
		a.accrue(src, st, now, a.pen.NoAuth, refusedPerSource)
		return false, refusedPerSource
	}
	switch {
	case a.total >= a.full:
		a.drop(now, refusedFull)
		return false, refusedFull
	case known || trusted:
	case a.total >= a.strangerFull:
		a.drop(now, refusedFull)
		return false, refusedFull
	case a.total >= a.start:
		// sshd: p = rate + (100-rate)*(n-start)/(full-start), in percent.
		p := a.rate + (100-a.rate)*(a.total-a.start)/max(a.strangerFull-a.start, 1)
		if a.rand(100) < p {
			a.drop(now, refusedEarlyDrop)
			return false, refusedEarlyDrop
		}
	}
	a.total++
	if st == nil {
		st = a.record(src)
	}
	if st != nil {
		st.startups++
	}
	return true, ""
}

// record returns a new state for src, or nil when too many are known.
func (a *admission) record(src netip.Prefix) *sourceState {
	if len(a.sources) >= maxSources {
		return nil
	}
	st := &sourceState{}
	a.sources[src] = st
	return st
}

// release gives back the slot of a connection admit let in, once it
// authenticated or ended, and applies its outcome.
func (a *admission) release(src netip.Prefix, how outcome) {
	if f := a.server.opts.released; f != nil {
		defer f(src)
	}
	now := a.now()
	trusted := a.isTrusted(src)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	st := a.sources[src]
	if st == nil {
		if how != outcomeAuthenticated {
			return
		}
		if st = a.record(src); st == nil {
			return
		}
		st.startups++ // balanced below
	}
	st.startups--
	switch how {
	case outcomeAuthenticated:
		st.lastAuth = now
		// An address that proves itself starts afresh.
		if !st.active {
			st.penalty = time.Time{}
			st.strikes = 0
			clear(st.reasons)
		}
	case outcomeAuthFail:
		if !trusted {
			a.accrue(src, st, now, a.pen.AuthFail, "authentication failed")
		}
	case outcomeNoAuth:
		if !trusted {
			a.accrue(src, st, now, a.pen.NoAuth, "no authentication")
		}
	case outcomeGraceExceeded:
		if !trusted {
			a.accrue(src, st, now, a.pen.GraceExceeded, "grace time exceeded")
		}
	}
}

// accrue adds d to src's penalty; a.mu is held. Crossing PenaltyMin makes
// it active, which is logged once for the source.
func (a *admission) accrue(src netip.Prefix, st *sourceState, now time.Time, d time.Duration, reason string) {
	if st.active || d <= 0 {
		return
	}
	if st.penalty.Before(now) {
		st.penalty = now
		clear(st.reasons)
	}
	st.penalty = st.penalty.Add(d)
	if limit := now.Add(a.pen.Max); st.penalty.After(limit) {
		st.penalty = limit
	}
	if st.reasons == nil {
		st.reasons = map[string]int{}
	}
	st.reasons[reason]++
	if st.penalty.Sub(now) < a.pen.Min {
		return
	}
	// A repeat offender's penalty doubles each time, up to Max.
	if d := min(a.pen.Min<<min(st.strikes, 20), a.pen.Max); st.penalty.Sub(now) < d {
		st.penalty = now.Add(d)
	}
	st.strikes++
	st.active = true
	st.refused = 0
	// "net", not "source": source is a backup source's name (STYLE), and is
	// sent to the journal as SOURCE=.
	args := []any{"net", src.String(), "penalty", st.penalty.Sub(now).Round(time.Second)}
	args = appendCounts(args, st.reasons)
	a.server.logger.Info("source penalised, refusing it before the banner", args...)
}

// penaltyOver ends src's active penalty; a.mu is held.
func (a *admission) penaltyOver(src netip.Prefix, st *sourceState) {
	a.server.logger.Debug("source penalty over", "net", src.String(), "refused", st.refused)
	st.active = false
	st.refused = 0
	clear(st.reasons)
}

// drop counts a global drop and warns at most every summaryEvery: the
// operator may need a higher MaxStartups; a.mu is held.
func (a *admission) drop(now time.Time, reason string) {
	a.dropped[reason]++
	if now.Sub(a.lastWarn) < summaryEvery {
		return
	}
	args := []any{"unauthenticated", a.total, "max_startups", a.full}
	args = appendCounts(args, a.dropped)
	a.server.logger.Warn("too many unauthenticated connections, dropping new ones", args...)
	a.lastWarn = now
	clear(a.dropped)
}

// sweep forgets sources with nothing left to remember, once a minute, or
// once a second while the table is full (a sweep walks all of it); a.mu
// is held.
func (a *admission) sweep(now time.Time) {
	since := now.Sub(a.lastSweep)
	if since < time.Second || since < time.Minute && len(a.sources) < maxSources {
		return
	}
	a.lastSweep = now
	for src, st := range a.sources {
		if st.active && !now.Before(st.penalty) {
			a.penaltyOver(src, st)
		}
		// Strikes are remembered for a day after the last penalty.
		if st.startups == 0 && !st.active && now.Sub(st.penalty) >= strikesFor &&
			(st.lastAuth.IsZero() || now.Sub(st.lastAuth) >= knownFor) {
			delete(a.sources, src)
		}
	}
}

// appendCounts adds one log field per reason, in name order, its key the
// reason with spaces and dashes as underscores ("per-source limit" is
// per_source_limit=N), so the line parses as plain key=value fields.
func appendCounts(args []any, counts map[string]int) []any {
	for _, r := range slices.Sorted(maps.Keys(counts)) {
		args = append(args, strings.NewReplacer(" ", "_", "-", "_").Replace(r), counts[r])
	}
	return args
}
