package backup

import (
	"context"
	"testing"

	"github.com/turku-backup/turku-storage/sessionlog"
)

// TestSlotsLimit: Limit is the bound SetLimit set, and the one enforced:
// a lowered bound holds new rsyncs back until enough ended, a raised one
// lets them start.
func TestSlotsLimit(t *testing.T) {
	t.Parallel()
	s := NewSlots(2)
	if got := s.Limit(); got != 2 {
		t.Fatalf("Limit() = %d, want 2", got)
	}
	log := sessionlog.Discard()
	ctx := context.Background()
	r1, err := s.acquire(ctx, log, "unit", "src")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.acquire(ctx, log, "unit", "src")
	if err != nil {
		t.Fatal(err)
	}
	s.SetLimit(1)
	if got := s.Limit(); got != 1 {
		t.Fatalf("after SetLimit(1): Limit() = %d, want 1", got)
	}
	r1()
	if ok, _, running := s.tryAcquire(); ok {
		t.Fatalf("a slot was given with %d running and a limit of 1", running)
	}
	s.SetLimit(3)
	if got := s.Limit(); got != 3 {
		t.Fatalf("after SetLimit(3): Limit() = %d, want 3", got)
	}
	if ok, _, _ := s.tryAcquire(); !ok {
		t.Fatal("no slot with 1 running and a limit of 3")
	}
	s.release()
	r2()
	if got := s.Running(); got != 0 {
		t.Errorf("Running() = %d after every slot was freed, want 0", got)
	}
}
