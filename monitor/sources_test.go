package monitor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSources(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return t0 }})
	if _, known := s.Assigned(); known {
		t.Error("assignments known before any refresh")
	}
	s.SeedSource("m1", "web1", "etc", t0.Add(-time.Hour))
	s.BackupFinished("m1", "web1", "home", false, t0.Add(-10*time.Minute), t0.Add(-9*time.Minute), "rsync exited 5\nmore")
	s.SetAssigned(map[string]Assignment{"m1": {Unit: "web1", Since: t0.Add(-48 * time.Hour)}})
	want := []SourceStatus{
		{Machine: "m1", Unit: "web1", Source: "etc", LastSuccess: t0.Add(-time.Hour), LastAttempt: t0.Add(-time.Hour), FirstSeen: t0.Add(-time.Hour)},
		{Machine: "m1", Unit: "web1", Source: "home", LastAttempt: t0.Add(-9 * time.Minute), FirstSeen: t0.Add(-10 * time.Minute),
			Failures: 1, FailingSince: t0.Add(-10 * time.Minute), LastError: "rsync exited 5"},
	}
	if diff := cmp.Diff(want, s.Sources()); diff != "" {
		t.Errorf("Sources (-want +got):\n%s", diff)
	}
	got, known := s.Assigned()
	if !known || got["m1"].Unit != "web1" {
		t.Errorf("Assigned: got %v, %v", got, known)
	}
	got["m2"] = Assignment{}
	if again, _ := s.Assigned(); len(again) != 1 {
		t.Error("Assigned returned the state's own map")
	}
	if n := s.Outcomes(); n != 1 {
		t.Errorf("Outcomes: got %d, want 1", n)
	}
}
