package backup

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/sessionlog"
)

// ready reports whether w has been handed its slot.
func ready(w *slotWaiter) bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

// grantedOf returns, for each waiter, whether it holds its slot.
func grantedOf(ws []*slotWaiter) []bool {
	out := make([]bool, len(ws))
	for i, w := range ws {
		out[i] = ready(w)
	}
	return out
}

// TestSlotsFirstComeFirstServed: a freed slot goes to the backup that
// waited longest. Before, every waiter was woken and raced for it, so on
// a busy night one machine could lose the race again and again.
func TestSlotsFirstComeFirstServed(t *testing.T) {
	s := NewSlots(2)
	for range 2 {
		if ok, _, _ := s.tryAcquire(); !ok {
			t.Fatal("no free slot")
		}
	}
	var ws []*slotWaiter
	for i := range 5 {
		ok, w, running := s.tryAcquire()
		if ok || running != 2 {
			t.Fatalf("waiter %d: got ok=%v running=%d, want a queued waiter and 2 running", i, ok, running)
		}
		ws = append(ws, w)
	}
	steps := []struct {
		name string
		do   func()
		want []bool
	}{
		{"nothing freed", func() {}, []bool{false, false, false, false, false}},
		{"one freed", s.release, []bool{true, false, false, false, false}},
		{"the third gives up", func() { s.cancel(ws[2]) }, []bool{true, false, false, false, false}},
		{"one more freed skips it", s.release, []bool{true, true, false, false, false}},
		{"limit raised by two", func() { s.SetLimit(4) }, []bool{true, true, false, true, true}},
	}
	for _, st := range steps {
		st.do()
		got := grantedOf(ws)
		got[2] = false // cancelled: never granted
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Fatalf("%s: granted (-want +got):\n%s", st.name, diff)
		}
	}
	if got, want := s.Running(), 4; got != want {
		t.Errorf("running: got %d, want %d", got, want)
	}
	if got := s.Waiting(); got != 0 {
		t.Errorf("waiting: got %d, want 0", got)
	}
	// A newcomer does not jump a queue: with one waiting, a free slot
	// still goes to the waiter.
	s.SetLimit(1)
	for range 4 {
		s.release()
	}
	if ok, _, _ := s.tryAcquire(); !ok {
		t.Fatal("a free slot with nobody waiting was not taken")
	}
	_, w2, _ := s.tryAcquire()
	_, w3, _ := s.tryAcquire()
	s.release()
	if !ready(w2) || ready(w3) {
		t.Errorf("after release: second granted %v, third granted %v; want true, false", ready(w2), ready(w3))
	}
	if ok, w, _ := s.tryAcquire(); ok {
		t.Error("a newcomer took a slot while another waited")
	} else {
		s.cancel(w)
	}
}

// TestSlotsCancelAfterGrant: a waiter whose context ends just as it is
// handed the slot passes the slot on rather than losing it.
func TestSlotsCancelAfterGrant(t *testing.T) {
	s := NewSlots(1)
	if ok, _, _ := s.tryAcquire(); !ok {
		t.Fatal("no free slot")
	}
	_, w1, _ := s.tryAcquire()
	_, w2, _ := s.tryAcquire()
	s.release()  // hands the slot to w1 ...
	s.cancel(w1) // ... which gave up meanwhile
	if !ready(w2) {
		t.Fatal("the slot given up was not handed to the next waiter")
	}
	if got := s.Running(); got != 1 {
		t.Errorf("running: got %d, want 1", got)
	}
}

// TestSlotsAcquireInterrupted: acquire waits in the queue and leaves it
// when its context ends, with the cause.
func TestSlotsAcquireInterrupted(t *testing.T) {
	s := NewSlots(1)
	if ok, _, _ := s.tryAcquire(); !ok {
		t.Fatal("no free slot")
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("shutdown")
	cancel(cause)
	_, err := s.acquire(ctx, sessionlog.Discard(), "web1", "etc")
	if !errors.Is(err, errInterrupted) || !errors.Is(err, cause) {
		t.Errorf("got %v, want interrupted: shutdown", err)
	}
	if got := s.Waiting(); got != 0 {
		t.Errorf("waiting after an interrupted acquire: got %d, want 0", got)
	}
	s.release()
	release, err := s.acquire(context.Background(), sessionlog.Discard(), "web1", "etc")
	if err != nil {
		t.Fatal(err)
	}
	release()
	release() // once only
	if got := s.Running(); got != 0 {
		t.Errorf("running: got %d, want 0", got)
	}
}

// TestSlotsLimit: Limit is the bound SetLimit set, and the one enforced:
// with one rsync running, a lowered bound of 1 queues the next, a raised
// one hands it its slot.
func TestSlotsLimit(t *testing.T) {
	t.Parallel()
	s := NewSlots(2)
	if got := s.Limit(); got != 2 {
		t.Fatalf("Limit() = %d, want 2", got)
	}
	if ok, _, _ := s.tryAcquire(); !ok {
		t.Fatal("no slot with none running and a limit of 2")
	}
	s.SetLimit(1)
	if got := s.Limit(); got != 1 {
		t.Fatalf("after SetLimit(1): Limit() = %d, want 1", got)
	}
	ok, w, running := s.tryAcquire()
	if ok {
		t.Fatalf("a slot was given with %d running and a limit of 1", running)
	}
	s.SetLimit(3)
	if got := s.Limit(); got != 3 {
		t.Fatalf("after SetLimit(3): Limit() = %d, want 3", got)
	}
	if !ready(w) {
		t.Error("the waiter has no slot with 1 running and a limit of 3")
	}
}
