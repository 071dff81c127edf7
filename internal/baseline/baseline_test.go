package baseline

import "testing"

// TestNsPerOpCalls: f runs again and again, not once, and the time per
// call is a positive number.
func TestNsPerOpCalls(t *testing.T) {
	calls := 0
	ns := NsPerOp(func() { calls++ })
	if calls < 2 {
		t.Errorf("f ran %d times, want many", calls)
	}
	if ns <= 0 {
		t.Errorf("got %v ns per call, want a positive time", ns)
	}
}
