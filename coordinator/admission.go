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

// admission decides, before a request's body is read, whether it is
// served: caps on requests in flight (all, and per address) and penalties
// for addresses that keep sending wrong secrets.
type admission struct {
	lim Limits
	now func() time.Time
	log *slog.Logger
	// admitted, when set (tests), is called after each admission.
	admitted func(key string)

	mu    sync.Mutex
	total int                   // guarded by mu
	addrs map[string]*addrState // guarded by mu
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
	return &admission{lim: lim.withDefaults(), now: now, log: log, addrs: make(map[string]*addrState)}
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

// admit takes a slot for a request from key, or says why not. A nil
// refusal must be paired with release.
func (a *admission) admit(key string) *refusal {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.addrs[key]
	if st != nil && st.penalties > 0 && now.Sub(st.lastFailure) > 2*a.lim.PenaltyMax {
		st.penalties = 0 // well behaved for long enough: start again from PenaltyBase
	}
	if st != nil && now.Before(st.until) {
		return &refusal{"Too many failed logins from your address, try again later", st.until.Sub(now)}
	}
	if a.total >= a.lim.MaxInFlight {
		return &refusal{"Too many requests in progress, try again later", time.Second}
	}
	if st == nil {
		if len(a.addrs) >= a.lim.MaxTracked {
			a.sweep(now)
		}
		if len(a.addrs) >= a.lim.MaxTracked {
			return &refusal{"Too many clients, try again later", time.Second}
		}
		st = &addrState{}
		a.addrs[key] = st
	}
	if st.inFlight >= a.lim.MaxInFlightPerAddr {
		return &refusal{"Too many requests in progress from your address, try again later", time.Second}
	}
	st.inFlight++
	a.total++
	if a.admitted != nil {
		a.admitted(key)
	}
	return nil
}

// release returns the slot of an admitted request and records its outcome:
// a refused secret counts towards a penalty, a call that proved a secret
// (authenticated) clears the count. A call anyone may make (health) does
// not: a guesser could make one between guesses.
func (a *admission) release(key string, badAuth, authenticated bool) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
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
