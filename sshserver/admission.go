package sshserver

import (
	"container/list"
	"maps"
	"math"
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
//   - A stranger that would be dropped waits instead, first come first
//     served, for a slot below Start, at most startupWait: a burst of
//     first-time agents authenticates in milliseconds each, so the queue
//     drains as fast as they log in. At most Full-Start wait (each an open
//     socket and a goroutine, nothing more); while any wait, a new stranger
//     queues behind them. Only a stranger that finds the queue full is
//     dropped at once, at random as above, and one still waiting after
//     startupWait is dropped then. Waiting connections count against their
//     source's PerSourceMaxStartups, not against MaxStartups.
//   - Failed authentications, refused connections and connections that end
//     before authentication add to the source's penalty; once it exceeds
//     Penalties.Min the source is refused before the banner until it has
//     served it. Each further penalty within a day is at least twice the
//     last, and none is longer than Penalties.Max.
//   - Trusted networks skip all of the per-source rules (the operator's own
//     networks, or many agents behind one NAT address).
//
// What admission remembers is bounded, and a full table never switches a
// rule off (a distributed attack can fill it with one connection from each
// of 65,536 sources):
//
//   - Known sources live in a table of their own, so strangers can never
//     crowd them out. It holds at least minKnown sources, and twice the
//     machines that may log in (SetMachines) when that is more: each
//     machine's address, and a second for one that moved or has two.
//     It survives a restart (knownsources.go).
//   - Strangers live in a table of at most maxSources. When it is full, a
//     new source takes the place of one whose only record is a penalty
//     already served (sampled at random), else of one whose small penalty
//     is still accruing; a source holding connections or serving a
//     penalty is never forgotten.
//   - A source that finds no room shares one overflow record with every
//     other that did not fit: the per-source limit and penalties apply to
//     all of them together.
//   - IPv6 /64s of one /48 take at most maxPer48 places; further /64s of
//     that /48 count as the /48, one source.
//
// Records are plain values without pointers, so the collector never scans
// the tables: full, the strangers' holds about 9 MiB and the known
// sources' about 100 bytes a source, 18 MiB for a fleet of 100,000
// machines (TestSourceTableFull holds both to 32 MiB at that fleet).

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
	// maxSources bounds the strangers remembered; minKnown is the least
	// bound of the known sources, whatever the fleet.
	maxSources = 1 << 16
	minKnown   = 1 << 14
	// startupWait bounds how long a stranger waits for a slot: long
	// enough for a burst of agents on a busy unit to log in one after the
	// other, short enough that a flood's waiting sockets turn over.
	startupWait = 5 * time.Second
	// maxPer48 bounds the places the /64s of one IPv6 /48 take among the
	// strangers; beyond it the /48 is one source.
	maxPer48 = 256
	// evictSample is how many records a new source looks at for one to
	// take the place of, when the table is full.
	evictSample = 64
	// summaryEvery spaces the warnings about global drops.
	summaryEvery = time.Minute
	// penaltyLines is how many sources are named as penalised per
	// summaryEvery; the others of a distributed attack are counted.
	penaltyLines = 20
)

// Refusal reasons, as logged.
const (
	refusedPenalty   = "penalty"
	refusedPerSource = "per-source limit"
	refusedFull      = "full"
	refusedEarlyDrop = "random early drop"
	refusedWaited    = "no slot in time"
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

// What a penalty was earned by, in the order the log names them.
const (
	reasonAuthFail = iota
	reasonGraceExceeded
	reasonNoAuth
	reasonPerSource
	numReasons
)

// reasonNames are the log fields of the reasons (appendCounts' form).
var reasonNames = [numReasons]string{"authentication_failed", "grace_time_exceeded", "no_authentication", "per_source_limit"}

// srcKey is a source as the tables store it: no pointers (a netip.Prefix
// holds one), so the collector never scans the tables.
type srcKey struct {
	addr [16]byte // the network's address, IPv4 in its IPv6-mapped form
	bits uint8    // prefix length: 32 for IPv4, 48 or 64 for IPv6
	v4   bool
}

// overflowKey names the overflow record in the log.
var overflowKey = srcKey{bits: 255}

func keyOf(p netip.Prefix) srcKey {
	return srcKey{addr: p.Addr().As16(), bits: uint8(p.Bits()), v4: p.Addr().Is4()}
}

// net48 is the /48 an IPv6 source belongs to; ok is false for IPv4.
func (k srcKey) net48() (srcKey, bool) {
	if k.v4 || k.bits <= 48 || k == overflowKey {
		return srcKey{}, false
	}
	n := srcKey{bits: 48}
	copy(n.addr[:6], k.addr[:6])
	return n, true
}

func (k srcKey) String() string {
	switch {
	case k == overflowKey:
		return "overflow"
	case k.v4:
		return netip.PrefixFrom(netip.AddrFrom16(k.addr).Unmap(), int(k.bits)).String()
	}
	return netip.PrefixFrom(netip.AddrFrom16(k.addr), int(k.bits)).String()
}

// sourceState is what admission knows about one source. Times are
// UnixNano, zero for never.
type sourceState struct {
	penalty  int64 // accrued penalty runs until then
	lastAuth int64 // last successful authentication (known sources)
	startups int32 // unauthenticated connections held
	refused  int32 // connections refused during the active penalty
	strikes  uint8 // penalties served; each doubles the next
	active   bool  // refused until penalty
	reasons  [numReasons]uint16
}

// forgettable reports whether st holds nothing but a penalty already
// served: forgetting it costs only the strikes that would double the next.
func (st *sourceState) forgettable(now int64) bool {
	return st.startups == 0 && !st.active && st.penalty <= now
}

// where a source's record is.
type place uint8

const (
	placeNone     place = iota // trusted: nothing recorded
	placeKnown                 // a.known
	placeStranger              // a.strangers
	placeOverflow              // a.overflow
)

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
	maxWaiting        int             // strangers that may wait for a slot

	mu        sync.Mutex    // guards the fields below
	total     int           // unauthenticated connections held
	waiting   list.List     // of *startupWaiter, oldest first
	wait      time.Duration // how long one may wait (tests shorten it)
	maxKnown  int           // bound of known
	knownSet  bool          // known changed since it was last saved
	known     map[srcKey]sourceState
	strangers map[srcKey]sourceState
	per48     map[srcKey]int32 // /64 records among strangers per /48
	overflow  sourceState      // strangers that found no room
	dropped   map[string]int   // global drops since the last warning
	lastWarn  time.Time
	lastSweep time.Time
	lastKnown time.Time // last sweep of known, at most once a minute
	// Penalty lines in the window opened at penSince, and the penalties
	// not logged in it.
	penSince              time.Time
	penLogged, penUnnamed int
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
		maxWaiting:   max(full-o.MaxStartups.Start, 0),
		wait:         startupWait,
		maxKnown:     knownBound(len(o.Machines)),
		known:        map[srcKey]sourceState{},
		strangers:    map[srcKey]sourceState{},
		per48:        map[srcKey]int32{},
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

// get returns the record at p, k (zero if there is none yet); a.mu is
// held.
func (a *admission) get(p place, k srcKey) sourceState {
	switch p {
	case placeKnown:
		return a.known[k]
	case placeStranger:
		return a.strangers[k]
	case placeOverflow:
		return a.overflow
	}
	return sourceState{}
}

// put stores st at p, k; a.mu is held and route found room for it.
func (a *admission) put(p place, k srcKey, st sourceState) {
	switch p {
	case placeKnown:
		a.known[k] = st
	case placeStranger:
		if _, ok := a.strangers[k]; !ok {
			if n, ok := k.net48(); ok {
				a.per48[n]++
			}
		}
		a.strangers[k] = st
	case placeOverflow:
		a.overflow = st
	}
}

// forgetStranger deletes k's record; a.mu is held.
func (a *admission) forgetStranger(k srcKey) {
	if _, ok := a.strangers[k]; !ok {
		return
	}
	delete(a.strangers, k)
	if n, ok := k.net48(); ok {
		if a.per48[n]--; a.per48[n] <= 0 {
			delete(a.per48, n)
		}
	}
}

// route finds where src's record is, or where a new one goes: its known
// record, its own stranger record, its /48's when that has its share of
// places, a place freed for it, or the overflow record. known reports
// whether src authenticated within knownFor. a.mu is held.
func (a *admission) route(k srcKey, now int64) (p place, at srcKey, known bool) {
	if st, ok := a.known[k]; ok {
		return placeKnown, k, now-st.lastAuth < int64(knownFor)
	}
	if _, ok := a.strangers[k]; ok {
		return placeStranger, k, false
	}
	if n, ok := k.net48(); ok {
		if _, ok := a.strangers[n]; ok || a.per48[n] >= maxPer48 {
			k = n
			if ok {
				return placeStranger, k, false
			}
		}
	}
	if len(a.strangers) < maxSources || a.evictStranger(now) {
		return placeStranger, k, false
	}
	return placeOverflow, overflowKey, false
}

// evictStranger makes room among the strangers: it forgets, from a random
// sample, a source whose only record is a served penalty, else one whose
// penalty still accrues below the minimum. It reports whether it made
// room; a.mu is held.
func (a *admission) evictStranger(now int64) bool {
	var accruing srcKey
	found, n := false, 0
	for k, st := range a.strangers { // map order is random
		if st.forgettable(now) {
			a.forgetStranger(k)
			return true
		}
		if !found && st.startups == 0 && !st.active {
			accruing, found = k, true
		}
		if n++; n >= evictSample {
			break
		}
	}
	if found {
		a.forgetStranger(accruing)
	}
	return found
}

// rememberKnown returns where k's known record goes, making room if the
// table is full: it forgets, from a random sample, the source that
// authenticated longest ago and holds nothing. ok is false when the
// sample held no such source. a.mu is held.
func (a *admission) rememberKnown(k srcKey) (ok bool) {
	if _, ok := a.known[k]; ok || len(a.known) < a.maxKnown {
		return true
	}
	var oldest srcKey
	var oldestAuth int64
	found, n := false, 0
	for kk, st := range a.known {
		if st.startups == 0 && !st.active && (!found || st.lastAuth < oldestAuth) {
			oldest, oldestAuth, found = kk, st.lastAuth, true
		}
		if n++; n >= evictSample {
			break
		}
	}
	if found {
		delete(a.known, oldest)
	}
	return found
}

// startupWaiter is a stranger's connection waiting for a slot. ready is
// closed once admission gave it one (granted, set under a.mu).
type startupWaiter struct {
	src     netip.Prefix
	ready   chan struct{}
	granted bool
	elem    *list.Element
}

// admitOrWait reports whether a new connection from src may proceed, and
// if not, why. An admitted connection holds a slot until release. With
// canWait a stranger past Start may be given a waiter instead of a
// refusal: its connection then waits for w.ready, and calls endWait.
func (a *admission) admitOrWait(src netip.Prefix, canWait bool) (ok bool, why string, w *startupWaiter) {
	now := a.now()
	trusted := a.isTrusted(src)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweep(now)
	k := keyOf(src)
	p, at, known := placeNone, k, false
	var st sourceState
	if !trusted {
		p, at, known = a.route(k, now.UnixNano())
		st = a.get(p, at)
		if st.active {
			if now.UnixNano() < st.penalty {
				st.refused++
				a.put(p, at, st)
				return false, refusedPenalty, nil
			}
			a.penaltyOver(at, &st)
		}
		if int(st.startups) >= a.perSource {
			a.accrue(at, &st, now, a.pen.NoAuth, reasonPerSource)
			a.put(p, at, st)
			return false, refusedPerSource, nil
		}
	}
	canWait = canWait && !known && !trusted && a.waiting.Len() < a.maxWaiting
	if canWait && a.waiting.Len() > 0 {
		// Behind those already waiting, first come first served.
		ok, why = false, refusedEarlyDrop
	} else {
		ok, why = a.global(now, known || trusted, !canWait)
	}
	switch {
	case ok:
		a.total++
		st.startups++
	case canWait:
		// It counts against its source's limit while it waits.
		st.startups++
		w = &startupWaiter{src: src, ready: make(chan struct{})}
		w.elem = a.waiting.PushBack(w)
		ok, why = false, ""
	}
	if p != placeNone && (ok || w != nil || a.get(p, at) != st) {
		a.put(p, at, st)
	}
	return ok, why, w
}

// endWait ends w's wait: true if it was given a slot, which it holds
// until release; else it is taken out of the queue, and counted as
// dropped unless quiet (shutdown).
func (a *admission) endWait(w *startupWaiter, quiet bool) bool {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.granted {
		return true
	}
	a.waiting.Remove(w.elem)
	w.elem = nil
	k := keyOf(w.src)
	if p, at := a.charged(k); a.get(p, at).startups > 0 {
		st := a.get(p, at)
		st.startups--
		a.put(p, at, st)
	}
	if !quiet {
		a.drop(now, refusedWaited)
	}
	return false
}

// waitFor is how long a stranger may wait for a slot.
func (a *admission) waitFor() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.wait
}

// grant hands the slots below Start to the strangers waiting longest;
// a.mu is held.
func (a *admission) grant() {
	for a.waiting.Len() > 0 && a.total < a.start {
		w := a.waiting.Remove(a.waiting.Front()).(*startupWaiter)
		w.elem = nil
		w.granted = true
		a.total++
		close(w.ready)
	}
}

// global applies MaxStartups; a.mu is held. A stranger's refusal is
// counted as a drop only when final: one that may wait is not dropped.
func (a *admission) global(now time.Time, known, final bool) (bool, string) {
	why := ""
	switch {
	case a.total >= a.full:
		why = refusedFull
	case known:
	case a.total >= a.strangerFull:
		why = refusedFull
	case a.total >= a.start:
		// sshd: p = rate + (100-rate)*(n-start)/(full-start), in percent.
		p := a.rate + (100-a.rate)*(a.total-a.start)/max(a.strangerFull-a.start, 1)
		if a.rand(100) < p {
			why = refusedEarlyDrop
		}
	}
	if why == "" {
		return true, ""
	}
	if final || known {
		a.drop(now, why)
	}
	return false, why
}

// charged finds the record a connection from k holds a slot of: its known
// record, its own, its /48's or the overflow, whichever holds one. A
// source's slots may be spread over them (it became known, or its /48
// filled, meanwhile); giving one back to any keeps their sum right.
// a.mu is held.
func (a *admission) charged(k srcKey) (place, srcKey) {
	if st, ok := a.known[k]; ok && st.startups > 0 {
		return placeKnown, k
	}
	if st, ok := a.strangers[k]; ok && st.startups > 0 {
		return placeStranger, k
	}
	if n, ok := k.net48(); ok {
		if st, ok := a.strangers[n]; ok && st.startups > 0 {
			return placeStranger, n
		}
	}
	return placeOverflow, overflowKey
}

// release gives back the slot of a connection admitOrWait let in, once it
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
	a.grant()
	if trusted {
		return
	}
	k := keyOf(src)
	if p, at := a.charged(k); a.get(p, at).startups > 0 {
		st := a.get(p, at)
		st.startups--
		a.put(p, at, st)
	}
	switch how {
	case outcomeAuthenticated:
		a.authenticated(k, now)
	case outcomeAuthFail:
		a.penalise(k, now, a.pen.AuthFail, reasonAuthFail)
	case outcomeNoAuth:
		a.penalise(k, now, a.pen.NoAuth, reasonNoAuth)
	case outcomeGraceExceeded:
		a.penalise(k, now, a.pen.GraceExceeded, reasonGraceExceeded)
	}
}

// authenticated makes k known. An address that proves itself starts
// afresh, unless it serves a penalty; a.mu is held.
func (a *admission) authenticated(k srcKey, now time.Time) {
	if !a.rememberKnown(k) {
		return
	}
	st := a.known[k]
	if old, ok := a.strangers[k]; ok {
		if old.active {
			st.penalty, st.active, st.strikes, st.reasons = old.penalty, true, old.strikes, old.reasons
		}
		// Its slots move with it, for charged to find.
		st.startups += old.startups
		a.forgetStranger(k)
	}
	st.lastAuth = now.UnixNano()
	a.knownSet = true
	if !st.active {
		st.penalty, st.strikes, st.reasons = 0, 0, [numReasons]uint16{}
	}
	a.known[k] = st
}

// penalise adds d to the penalty of k's record, wherever admission will
// look for it next; a.mu is held.
func (a *admission) penalise(k srcKey, now time.Time, d time.Duration, reason int) {
	p, at, _ := a.route(k, now.UnixNano())
	st := a.get(p, at)
	a.accrue(at, &st, now, d, reason)
	a.put(p, at, st)
}

// accrue adds d to src's penalty; a.mu is held. Crossing PenaltyMin makes
// it active, which is logged once for the source.
func (a *admission) accrue(src srcKey, st *sourceState, now time.Time, d time.Duration, reason int) {
	if st.active || d <= 0 {
		return
	}
	n := now.UnixNano()
	if st.penalty < n {
		st.penalty = n
		st.reasons = [numReasons]uint16{}
	}
	st.penalty = min(st.penalty+int64(d), n+int64(a.pen.Max))
	if st.reasons[reason] < math.MaxUint16 {
		st.reasons[reason]++
	}
	if time.Duration(st.penalty-n) < a.pen.Min {
		return
	}
	// A repeat offender's penalty doubles each time, up to Max.
	if d := min(a.pen.Min<<min(st.strikes, 20), a.pen.Max); time.Duration(st.penalty-n) < d {
		st.penalty = n + int64(d)
	}
	if st.strikes < math.MaxUint8 {
		st.strikes++
	}
	st.active = true
	st.refused = 0
	a.penaltySummary(now)
	if a.penLogged >= penaltyLines {
		a.penUnnamed++
		return
	}
	a.penLogged++
	// "net", not "source": source is a backup source's name (STYLE), and is
	// sent to the journal as SOURCE=.
	args := []any{"net", src.String(), "penalty", time.Duration(st.penalty - n).Round(time.Second)}
	for i, c := range st.reasons {
		if c > 0 {
			args = append(args, reasonNames[i], int(c))
		}
	}
	a.server.logger.Info("source penalised, refusing it before the banner", args...)
}

// penaltySummary closes the window of penalty lines once summaryEvery
// has passed, saying how many penalties it did not name; a.mu is held.
func (a *admission) penaltySummary(now time.Time) {
	if now.Sub(a.penSince) < summaryEvery {
		return
	}
	if a.penUnnamed > 0 {
		a.server.logger.Warn("more sources penalised than named", "sources", a.penUnnamed,
			"named", a.penLogged, "period", now.Sub(a.penSince).Round(time.Second))
	}
	a.penSince, a.penLogged, a.penUnnamed = now, 0, 0
}

// penaltyOver ends src's active penalty; a.mu is held.
func (a *admission) penaltyOver(src srcKey, st *sourceState) {
	a.server.logger.Debug("source penalty over", "net", src.String(), "refused", st.refused)
	st.active = false
	st.refused = 0
	st.reasons = [numReasons]uint16{}
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
// once a second while the strangers' table is full (a sweep walks all of
// it). The known sources are walked once a minute whatever the strangers
// do: a flood fills only the strangers' table, and a known source's
// served penalty also ends when it next connects. a.mu is held.
func (a *admission) sweep(now time.Time) {
	since := now.Sub(a.lastSweep)
	if since < time.Second || since < time.Minute && len(a.strangers) < maxSources {
		return
	}
	a.lastSweep = now
	a.penaltySummary(now)
	n := now.UnixNano()
	for k, st := range a.strangers {
		if st.active && n >= st.penalty {
			a.penaltyOver(k, &st)
			a.strangers[k] = st
		}
		// Strikes are remembered for a day after the last penalty.
		if st.forgettable(n) && n-st.penalty >= int64(strikesFor) {
			a.forgetStranger(k)
		}
	}
	if a.overflow.active && n >= a.overflow.penalty {
		a.penaltyOver(overflowKey, &a.overflow)
	}
	if now.Sub(a.lastKnown) < time.Minute {
		return
	}
	a.lastKnown = now
	for k, st := range a.known {
		if st.active && n >= st.penalty {
			a.penaltyOver(k, &st)
			a.known[k] = st
		}
		if st.forgettable(n) && n-st.lastAuth >= int64(knownFor) {
			delete(a.known, k)
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
