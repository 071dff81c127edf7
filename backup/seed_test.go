package backup

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/testlog"
	"github.com/turku-backup/turku-storage/monitor"
)

// TestSeedFromSnapshots: a machine with snapshots and no history (one an
// old unit wrote) gets each source's newest snapshot as its last success,
// one without a .json by the time in its name; and a second start, now
// through the index serve's first start wrote, seeds the same.
func TestSeedFromSnapshots(t *testing.T) {
	u := newIndexUnit(t)
	dir := u.machine(testUUID, "web1")
	u.snapshot(dir, "etc", 0, true)
	u.snapshot(dir, "etc", 2, true)
	u.snapshot(dir, "home", 1, false)
	want := map[string]time.Time{
		"etc":  u.t0.Add(48*time.Hour + 7*time.Minute), // the .json's sync_finish
		"home": u.t0.Add(24 * time.Hour),               // the name's time
	}
	for round := range 2 {
		state := monitor.New(monitor.Options{})
		Seed(context.Background(), state, u.varDir, time.UTC, map[string]string{testUUID: "web1"}, testlog.New(t))
		got := map[string]time.Time{}
		for _, s := range state.Sources() {
			if s.Machine != testUUID || s.Unit != "web1" {
				t.Errorf("round %d: source %+v, want machine %s, unit web1", round, s, testUUID)
			}
			got[s.Source] = s.LastSuccess
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: seeded %v, want %v", round, got, want)
		}
		for src, w := range want {
			if !got[src].Equal(w) {
				t.Errorf("round %d: %s last success %v, want %v", round, src, got[src], w)
			}
		}
		if _, err := os.Stat(u.indexPath()); err != nil {
			t.Errorf("round %d: no snapshot index after the seed: %v", round, err)
		}
	}
}
