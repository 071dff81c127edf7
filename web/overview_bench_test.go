package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/monitor"
)

// tenThousand is a unit serving 10,000 machines as a large storage unit
// might: most backed up within the day, one in ten failing, one in fifty
// stale, one in a hundred never backed up, one in two hundred an orphan.
// Every machine but the never backed up has a real snapshot directory
// with its .json and usage ledger.
func tenThousand(b *testing.B) *unit {
	b.Helper()
	u := newUnit(b)
	for i := range 10000 {
		uuid := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		name := fmt.Sprintf("host%05d", i)
		switch {
		case i%200 == 7:
			u.snapshot(uuid, name, "etc", 90*time.Hour, time.Minute, 1<<20)
			continue // not assigned: an orphan
		case i%100 == 3:
			u.assigned(uuid, name, time.Hour)
			continue // never backed up
		}
		u.assign[uuid] = monitor.Assignment{Unit: name, Since: u.now.Add(-30 * 24 * time.Hour)}
		ago := time.Duration(i%20) * time.Hour
		if i%50 == 1 {
			ago = 72 * time.Hour
		}
		u.snapshot(uuid, name, "etc", ago, time.Duration(i%300)*time.Second, int64(i)<<10)
		if i%10 == 5 {
			u.attempt(uuid, name, "etc", false, 30*time.Minute, "rsync: connection unexpectedly closed (code 12)")
		}
	}
	u.state.SetAssigned(u.assign)
	return u
}

func BenchmarkOverview10k(b *testing.B) {
	benchPage(b, "/")
}

// BenchmarkOverviewJSON10k is /api/overview for the same unit, filtered
// to the failing machines (1,000 of them, ten pages).
func BenchmarkOverviewJSON10k(b *testing.B) {
	benchPage(b, "/api/overview?state=failing&sort=name")
}

// benchPage times GET target on tenThousand and reports the page's size.
func benchPage(b *testing.B, target string) {
	u := tenThousand(b)
	h := u.server(Options{}).Handler()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "page-bytes")
}

// BenchmarkDiskRead10k is one full read of the 10,000 machines' snapshots
// into the dashboard's cache, done at start and every rescan interval in
// the background, never on a request.
func BenchmarkDiskRead10k(b *testing.B) {
	u := tenThousand(b)
	s := u.server(Options{})
	for b.Loop() {
		if err := s.disk.readAll(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
