package backup

import (
	"context"
	"fmt"
	"sync"

	"github.com/turku-backup/turku-storage/sessionlog"
)

// Slots bounds the rsyncs running at once (max_concurrent_backups). One
// Slots serves every Engine of a daemon — engines are rebuilt on a
// configuration reload while the old one's sessions still run — so the
// bound holds across all of them.
type Slots struct {
	mu      sync.Mutex // guards the fields below
	limit   int        // 0: unlimited
	running int
	// freed is closed and replaced whenever a slot frees or the limit
	// changes, waking every waiter to try again.
	freed chan struct{}
}

// NewSlots returns Slots allowing limit rsyncs at once; 0 means no limit.
func NewSlots(limit int) *Slots {
	return &Slots{limit: max(limit, 0), freed: make(chan struct{})}
}

// SetLimit changes the bound (configuration reload). Running rsyncs are
// not stopped; above a lowered limit, new ones wait until enough ended.
func (s *Slots) SetLimit(limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = max(limit, 0)
	s.wake()
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

// wake must be called with mu held.
func (s *Slots) wake() {
	close(s.freed)
	s.freed = make(chan struct{})
}

// tryAcquire takes a slot if one is free; otherwise it returns a channel
// closed when it is worth trying again, and how many run.
func (s *Slots) tryAcquire() (bool, <-chan struct{}, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit == 0 || s.running < s.limit {
		s.running++
		return true, nil, s.running
	}
	return false, s.freed, s.running
}

func (s *Slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	s.wake()
}

// acquire waits for a slot, telling the agent when it has to wait, and
// returns the function that frees it.
func (s *Slots) acquire(ctx context.Context, log *sessionlog.Logger, unit, source string) (func(), error) {
	var once sync.Once
	release := func() { once.Do(s.release) }
	ok, retry, running := s.tryAcquire()
	if ok {
		return release, nil
	}
	log.Infof("Waiting for a free backup slot: %d other backups are running (%s %s)", running, unit, source)
	for {
		select {
		case <-retry:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", errInterrupted, context.Cause(ctx))
		}
		if ok, retry, _ = s.tryAcquire(); ok {
			return release, nil
		}
	}
}
