package coordinator

import (
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits bound what the network-facing API (Handler) admits. Zero fields
// take the defaults of DefaultLimits.
type Limits struct {
	// MaxInFlight caps the requests being served at once, from all
	// addresses together; more are answered 429.
	MaxInFlight int
	// MaxInFlightPerAddr caps the requests being served at once from one
	// client address (an IPv4 address, or an IPv6 /64); more are
	// answered 429.
	MaxInFlightPerAddr int
	// PenaltyFailures is how many refused secrets (403 Bad auth) one
	// address may send before it is refused outright (429) for a while.
	PenaltyFailures int
	// PenaltyBase is the first refusal time; each further penalty of the
	// same address doubles it, up to PenaltyMax.
	PenaltyBase time.Duration
	PenaltyMax  time.Duration
	// MaxTracked bounds the number of addresses remembered; when it is
	// full of addresses with requests in flight or penalties running, new
	// addresses are answered 429 until some expire.
	MaxTracked int
}

// DefaultLimits suit one storage unit's agents: an agent makes one call
// at a time, a site's agents seldom more than a few at once, and two
// argon2 slots answer a few cold logins a second at most.
var DefaultLimits = Limits{
	MaxInFlight:        32,
	MaxInFlightPerAddr: 4,
	PenaltyFailures:    5,
	PenaltyBase:        30 * time.Second,
	PenaltyMax:         15 * time.Minute,
	MaxTracked:         65536,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v, def int) int {
		if v > 0 {
			return v
		}
		return def
	}
	pickD := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	return Limits{
		MaxInFlight:        pick(l.MaxInFlight, d.MaxInFlight),
		MaxInFlightPerAddr: pick(l.MaxInFlightPerAddr, d.MaxInFlightPerAddr),
		PenaltyFailures:    pick(l.PenaltyFailures, d.PenaltyFailures),
		PenaltyBase:        pickD(l.PenaltyBase, d.PenaltyBase),
		PenaltyMax:         pickD(l.PenaltyMax, d.PenaltyMax),
		MaxTracked:         pick(l.MaxTracked, d.MaxTracked),
	}
}

// Addresses that authenticated recently are known: a share of the
// connections and of the requests in flight is kept for them, so clients
// without a secret (slow headers, slow bodies, floods) cannot lock out
// the agents, as the SSH side keeps a share for known sources.
const (
	// knownFor is how long a call that proved a secret makes its address
	// known; turku-agent refreshes its configuration twice a day and
	// pings every few minutes.
	knownFor = 24 * time.Hour
	// maxKnown bounds the known addresses remembered (only calls with a
	// valid secret add one); past it the oldest is forgotten.
	maxKnown = 1 << 14
	// summaryEvery spaces the warnings about refused clients.
	summaryEvery = time.Minute
)

// strangerShare is how much of a budget of n strangers may take: all but
// a quarter, at least 1.
func strangerShare(n int) int { return max(n-n/4, 1) }

// Refusals counted in the summary warning, by the limit that refused.
const (
	refusedConnsFull      = "connections_full"        // maxConns, known addresses' share too
	refusedConnsStrangers = "connections_strangers"   // strangers' share of maxConns
	refusedConnsPerAddr   = "connections_per_address" // maxConnsPerAddr
	refusedBusy           = "requests_full"           // MaxInFlight, known addresses' share too
	refusedBusyStrangers  = "requests_strangers"      // strangers' share of MaxInFlight
	refusedBusyPerAddr    = "requests_per_address"    // MaxInFlightPerAddr
	refusedTracked        = "addresses_tracked"       // MaxTracked
	refusedSlowBody       = "slow_bodies"             // body deadline passed, 408
	refusedTLSHandshake   = "tls_handshakes_failed"   // handshake deadline passed, or not TLS
)

// summaryOrder is the order of the summary's fields.
var summaryOrder = []string{refusedConnsFull, refusedConnsStrangers, refusedConnsPerAddr,
	refusedBusy, refusedBusyStrangers, refusedBusyPerAddr, refusedTracked, refusedSlowBody, refusedTLSHandshake}

// admission decides, before a request's body is read, whether it is
// served: caps on requests in flight (all, strangers' share, and per
// address) and penalties for addresses that keep sending wrong secrets.
// It also keeps the known addresses, which Listener asks about too, and
// the count of refusals for the summary warning.
type admission struct {
	lim Limits
	now func() time.Time
	log *slog.Logger
	// admitted, when set (tests), is called after each admission, with
	// mu held.
	admitted func(key string)

	mu        sync.Mutex
	total     int                   // requests in flight; guarded by mu
	strangers int                   // of which from addresses not known; guarded by mu
	addrs     map[string]*addrState // guarded by mu
	known     map[string]time.Time  // last call that proved a secret, by addrKey; guarded by mu
	refused   map[string]int        // refusals since the last summary; guarded by mu
	lastWarn  time.Time             // of the last summary; guarded by mu
}

// addrState is what admission remembers of one client address.
type addrState struct {
	inFlight    int
	failures    int       // refused secrets since the last penalty
	lastFailure time.Time // when the last one came
	penalties   int       // penalties so far; each doubles the next
	until       time.Time // refused before this time
}

func newAdmission(lim Limits, now func() time.Time, log *slog.Logger) *admission {
	return &admission{lim: lim.withDefaults(), now: now, log: log, addrs: make(map[string]*addrState),
		known: make(map[string]time.Time), refused: make(map[string]int)}
}

// refusal is why admission turned a request away, and for how long.
type refusal struct {
	msg        string
	retryAfter time.Duration
}

// addrKey is the unit limits apply to: an IPv4 address, or the /64 of an
// IPv6 address (one host usually holds a whole /64).
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// isKnown reports whether a call from key proved a secret within knownFor.
func (a *admission) isKnown(key string) bool {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.knownLocked(key, now)
}

func (a *admission) knownLocked(key string, now time.Time) bool {
	t, ok := a.known[key]
	return ok && now.Sub(t) < knownFor
}

// rememberLocked makes key known from now on.
func (a *admission) rememberLocked(key string, now time.Time) {
	if _, ok := a.known[key]; !ok && len(a.known) >= maxKnown {
		oldest, first := "", true
		for k, t := range a.known {
			if now.Sub(t) >= knownFor {
				delete(a.known, k)
				continue
			}
			if first || t.Before(a.known[oldest]) {
				oldest, first = k, false
			}
		}
		if len(a.known) >= maxKnown {
			delete(a.known, oldest)
		}
	}
	a.known[key] = now
}

// noteRefused counts a refusal for the summary warning.
func (a *admission) noteRefused(reason string) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.noteLocked(reason, now)
}

// noteLocked counts a refusal and, at most once per summaryEvery, logs
// the refusals since the last warning: one line for a flood, not one per
// refused client.
func (a *admission) noteLocked(reason string, now time.Time) {
	a.refused[reason]++
	if !a.lastWarn.IsZero() && now.Sub(a.lastWarn) < summaryEvery {
		return
	}
	args := make([]any, 0, 2*len(summaryOrder)+4)
	for _, r := range summaryOrder {
		if n := a.refused[r]; n > 0 {
			args = append(args, r, n)
		}
	}
	args = append(args, "in_flight", a.total, "known_addresses", len(a.known))
	a.log.Warn("api clients refused at the limits", args...)
	clear(a.refused)
	a.lastWarn = now
}

// admit takes a slot for a request from key, or says why not. A nil
// refusal must be paired with release, passing back stranger: whether the
// slot came from the strangers' share.
func (a *admission) admit(key string) (stranger bool, ref *refusal) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.addrs[key]
	if st != nil && st.penalties > 0 && now.Sub(st.lastFailure) > 2*a.lim.PenaltyMax {
		st.penalties = 0 // well behaved for long enough: start again from PenaltyBase
	}
	if st != nil && now.Before(st.until) {
		return false, &refusal{"Too many failed logins from your address, try again later", st.until.Sub(now)}
	}
	busy := &refusal{"Too many requests in progress, try again later", time.Second}
	stranger = !a.knownLocked(key, now)
	if a.total >= a.lim.MaxInFlight {
		a.noteLocked(refusedBusy, now)
		return false, busy
	}
	if stranger && a.strangers >= strangerShare(a.lim.MaxInFlight) {
		a.noteLocked(refusedBusyStrangers, now)
		return false, busy
	}
	if st == nil {
		if len(a.addrs) >= a.lim.MaxTracked {
			a.sweep(now)
		}
		if len(a.addrs) >= a.lim.MaxTracked {
			a.noteLocked(refusedTracked, now)
			return false, &refusal{"Too many clients, try again later", time.Second}
		}
		st = &addrState{}
		a.addrs[key] = st
	}
	if st.inFlight >= a.lim.MaxInFlightPerAddr {
		a.noteLocked(refusedBusyPerAddr, now)
		return false, &refusal{"Too many requests in progress from your address, try again later", time.Second}
	}
	st.inFlight++
	a.total++
	if stranger {
		a.strangers++
	}
	if a.admitted != nil {
		a.admitted(key)
	}
	return stranger, nil
}

// release returns the slot of an admitted request and records its outcome:
// a refused secret counts towards a penalty, a call that proved a secret
// (authenticated) clears the count and makes the address known. A call
// anyone may make (health) does neither: a guesser could make one between
// guesses.
func (a *admission) release(key string, stranger, badAuth, authenticated bool) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if stranger {
		a.strangers--
	}
	st := a.addrs[key]
	if st == nil {
		return
	}
	st.inFlight--
	switch {
	case badAuth:
		if now.Sub(st.lastFailure) > a.lim.PenaltyMax {
			st.failures = 0 // an old run of failures is forgotten
		}
		st.failures++
		st.lastFailure = now
		if st.failures >= a.lim.PenaltyFailures {
			d := a.penalty(st.penalties)
			st.penalties++
			st.failures = 0
			st.until = now.Add(d)
			// One line per penalty, not one per attempt.
			a.log.Warn("api client penalised for failed logins", "remote", key,
				"failures", a.lim.PenaltyFailures, "penalties", st.penalties, "duration", d)
		}
	case authenticated:
		st.failures = 0
		a.rememberLocked(key, now)
	}
	if st.inFlight == 0 && st.failures == 0 && st.penalties == 0 {
		delete(a.addrs, key)
	}
}

// penalty is the refusal time after n earlier penalties.
func (a *admission) penalty(n int) time.Duration {
	d := a.lim.PenaltyBase
	for range min(n, 32) {
		d *= 2
		if d >= a.lim.PenaltyMax || d <= 0 {
			return a.lim.PenaltyMax
		}
	}
	return min(d, a.lim.PenaltyMax)
}

// sweep forgets idle addresses whose penalty and failures have expired;
// the caller holds mu.
func (a *admission) sweep(now time.Time) {
	for k, st := range a.addrs {
		if st.inFlight == 0 && now.After(st.until) && now.Sub(st.lastFailure) > 2*a.lim.PenaltyMax {
			delete(a.addrs, k)
		}
	}
}

// retryAfterSeconds is a Retry-After value: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
