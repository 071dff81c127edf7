package tunnel

import (
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// refusalInterval is how often refused connections are summarised in the
// log while they go on.
const refusalInterval = time.Minute

// Why a connection was refused, for the summary's counts. The admission
// checks wrap one of these.
var (
	errOtherUser    = errors.New("socket of another user")
	errOwnProcess   = errors.New("socket held by the storage unit's own process")
	errNotHeld      = errors.New("socket not held by this process or one of its children")
	errSecondConn   = errors.New("process already made its connection")
	errSocketClosed = errors.New("socket no longer open")
)

// reasonNames are the summary's field names for each refusal reason.
var reasonNames = []struct {
	err  error
	name string
}{
	{errOtherUser, "other_user"},
	{errOwnProcess, "own_process"},
	{errNotHeld, "other_process"},
	{errSecondConn, "second_connection"},
	{errSocketClosed, "closed_socket"},
}

func reasonName(err error) string {
	for _, r := range reasonNames {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "lookup_failed"
}

// refusalLog logs refused connections without letting a local flood fill
// the log: the first refusal of a quiet spell is logged at once, in full;
// those that follow are counted and summarised in one line per interval
// (and when the Endpoint closes) until an interval passes without any.
type refusalLog struct {
	logger   *slog.Logger
	interval time.Duration

	mu       sync.Mutex // guards the fields below
	spell    bool       // a summariser goroutine runs
	counts   map[string]int64
	total    int64
	lastPeer string
	lastErr  error
}

func newRefusalLog(logger *slog.Logger, interval time.Duration) *refusalLog {
	return &refusalLog{logger: logger, interval: interval, counts: map[string]int64{}}
}

// refused records one refused connection of e; the summariser it may
// start is one of e's goroutines.
func (r *refusalLog) refused(e *Endpoint, peer string, err error) {
	if e.onRefused != nil {
		defer e.onRefused(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.spell {
		r.counts[reasonName(err)]++
		r.total++
		r.lastPeer, r.lastErr = peer, err
		return
	}
	r.spell = true
	r.logger.Warn("tunnel connection refused", "peer", peer, "err", err)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		r.summarise(e)
	}()
}

// summarise writes a summary every interval while there is something to
// say, and a last one when e stops.
func (r *refusalLog) summarise(e *Endpoint) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		stopping := false
		select {
		case <-t.C:
		case <-e.ctx.Done():
			stopping = true
		}
		r.mu.Lock()
		if r.total > 0 {
			attrs := []any{"refused", r.total, "interval", r.interval, "last_peer", r.lastPeer, "last_err", r.lastErr}
			names := make([]string, 0, len(r.counts))
			for n := range r.counts {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				attrs = append(attrs, n, r.counts[n])
			}
			r.logger.Warn("tunnel connections refused since the last line", attrs...)
			r.total, r.counts, r.lastPeer, r.lastErr = 0, map[string]int64{}, "", nil
		} else {
			stopping = true // a quiet interval ends the spell
		}
		if stopping {
			r.spell = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}
