package backup

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/turku-backup/turku-storage/sessionlog"
)

// Slots bounds the rsyncs running at once (max_concurrent_backups). One
// Slots serves every Engine of a daemon — engines are rebuilt on a
// configuration reload while the old one's sessions still run — so the
// bound holds across all of them.
//
// Waiters are served first come, first served: a freed slot is handed to
// the backup that has waited longest, never raced for, so on a busy night
// no machine waits much longer than the others that arrived with it.
type Slots struct {
	mu      sync.Mutex // guards the fields below
	limit   int        // 0: unlimited
	running int        // slots taken, including those handed to a waiter
	queue   list.List  // of *slotWaiter, oldest first
}

// slotWaiter is one backup waiting for a slot. ready is closed once the
// slot is handed over (granted set under Slots.mu).
type slotWaiter struct {
	ready   chan struct{}
	granted bool
	elem    *list.Element
}

// NewSlots returns Slots allowing limit rsyncs at once; 0 means no limit.
func NewSlots(limit int) *Slots {
	return &Slots{limit: max(limit, 0)}
}

// SetLimit changes the bound (configuration reload). Running rsyncs are
// not stopped; above a lowered limit, new ones wait until enough ended.
func (s *Slots) SetLimit(limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = max(limit, 0)
	s.grant()
}

// Limit returns the bound in force (0: none): the one place status reads
// max_concurrent_backups from, so it shows what the slots enforce.
func (s *Slots) Limit() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit
}

// Running returns how many slots are taken.
func (s *Slots) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// Waiting returns how many backups wait for a slot.
func (s *Slots) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.Len()
}

// free reports whether a slot is free; mu is held.
func (s *Slots) free() bool { return s.limit == 0 || s.running < s.limit }

// grant hands free slots to the oldest waiters; mu is held.
func (s *Slots) grant() {
	for s.queue.Len() > 0 && s.free() {
		w := s.queue.Remove(s.queue.Front()).(*slotWaiter)
		w.elem = nil
		w.granted = true
		s.running++
		close(w.ready)
	}
}

// tryAcquire takes a slot if one is free and nobody waits for one;
// otherwise it queues a waiter, whose ready channel is closed once the
// slot is its own. It also returns how many run.
func (s *Slots) tryAcquire() (bool, *slotWaiter, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queue.Len() == 0 && s.free() {
		s.running++
		return true, nil, s.running
	}
	w := &slotWaiter{ready: make(chan struct{})}
	w.elem = s.queue.PushBack(w)
	return false, w, s.running
}

// cancel takes w out of the queue; a slot handed to it meanwhile goes to
// the next waiter.
func (s *Slots) cancel(w *slotWaiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		s.running--
		s.grant()
		return
	}
	s.queue.Remove(w.elem)
	w.elem = nil
}

func (s *Slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	s.grant()
}

// acquire waits for a slot, telling the agent when it has to wait, and
// returns the function that frees it.
func (s *Slots) acquire(ctx context.Context, log *sessionlog.Logger, unit, source string) (func(), error) {
	var once sync.Once
	release := func() { once.Do(s.release) }
	ok, w, running := s.tryAcquire()
	if ok {
		return release, nil
	}
	log.Infof("Waiting for a free backup slot: %d other backups are running (%s %s)", running, unit, source)
	select {
	case <-w.ready:
		return release, nil
	case <-ctx.Done():
		s.cancel(w)
		return nil, fmt.Errorf("%w: %w", errInterrupted, context.Cause(ctx))
	}
}
