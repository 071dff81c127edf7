package testlog

import (
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what is logged and runs cleanups
// when told, so the test can look at both sides of the cleanup.
type recorder struct {
	testing.TB
	logged   []string
	cleanups []func()
}

func (r *recorder) Log(args ...any) {
	for _, a := range args {
		r.logged = append(r.logged, a.(string))
	}
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func TestWriterStopsAtCleanup(t *testing.T) {
	r := &recorder{TB: t}
	log := New(r)
	log.Info("before", "machine", "m1")
	for _, f := range r.cleanups {
		f()
	}
	log.Info("after")
	if len(r.logged) != 1 {
		t.Fatalf("got %d lines %q, want 1", len(r.logged), r.logged)
	}
	line := r.logged[0]
	if !strings.Contains(line, "msg=before machine=m1") || strings.HasSuffix(line, "\n") {
		t.Errorf("got %q, want the record for %q without a trailing newline", line, "before")
	}
}
