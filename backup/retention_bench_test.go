package backup

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/baseline"
)

// BenchmarkRetentionPlan: the retention decision over 10,000 snapshots
// (hourly for 14 months), listed in directory order (shuffled), with a
// spec that uses every kind of item. Baseline in the same run: sorting the
// snapshots, which any plan must do first.
func BenchmarkRetentionPlan(b *testing.B) {
	const n = 10000
	now := time.Date(2026, 11, 25, 3, 15, 0, 0, time.UTC)
	snaps := make([]Snapshot, n)
	for i := range snaps {
		t := now.Add(-time.Duration(n-i) * time.Hour)
		name := snapshotName("etc", t, fmt.Sprintf("%04x", i))
		snaps[i] = Snapshot{Name: name, Path: "/v/m/etc.snapshots/" + name, SyncBegin: t.Add(-time.Minute), SyncFinish: t}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { snaps[i], snaps[j] = snaps[j], snaps[i] })
	r, err := ParseRetention("last 7 days, last 30 snapshots, earliest of day, earliest of 4 weeks, earliest of fortnight, earliest of 12 months")
	if err != nil {
		b.Fatal(err)
	}
	sortOnly := baseline.NsPerOp(func() {
		s := slices.Clone(snaps)
		sortSnapshots(s)
	})
	for b.Loop() {
		if d := r.Plan(snaps, now); len(d) != n {
			b.Fatalf("got %d decisions, want %d", len(d), n)
		}
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(sortOnly, "sort-only-ns/op")
	b.ReportMetric(perOp/sortOnly, "x-of-sort")
}
