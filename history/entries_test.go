package history

import (
	"slices"
	"testing"
	"time"
)

func TestEntriesAndWithUnit(t *testing.T) {
	s := New(t.TempDir())
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	for _, r := range []struct {
		machine, unit, source string
		end                   time.Duration
	}{
		{"m-a", "web1", "etc", 1 * time.Hour},
		{"m-b", "db1", "etc", 3 * time.Hour},
		{"m-a", "web1", "var", 2 * time.Hour},
		{"m-c", "db1", "etc", 2 * time.Hour},
	} {
		end := t0.Add(r.end)
		if _, err := s.Append(r.machine, Attempt{Source: r.source, Unit: r.unit, Begin: end.Add(-time.Minute), End: end, Success: true}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Entries(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range all {
		got = append(got, e.Machine+"/"+e.Source)
	}
	// Newest first; equal ends by machine.
	if want := []string{"m-b/etc", "m-a/var", "m-c/etc", "m-a/etc"}; !slices.Equal(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	if all[0].DurationSeconds != 60 {
		t.Errorf("duration %v, want 60", all[0].DurationSeconds)
	}
	one, err := s.Entries([]string{"m-a"}, "etc")
	if err != nil || len(one) != 1 || one[0].Source != "etc" || one[0].Machine != "m-a" {
		t.Errorf("m-a etc: %+v, %v", one, err)
	}
	if got, err := s.WithUnit("db1"); err != nil || !slices.Equal(got, []string{"m-b", "m-c"}) {
		t.Errorf("WithUnit(db1) = %v, %v; want m-b and m-c", got, err)
	}
	if got, err := s.WithUnit("nope"); err != nil || len(got) != 0 {
		t.Errorf("WithUnit(nope) = %v, %v", got, err)
	}
}
