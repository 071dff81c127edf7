package web

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestDiskCacheFollowsBackups: the cache of the disk reads a machine again
// once a backup of it finished, without waiting for the full rescan.
func TestDiskCacheFollowsBackups(t *testing.T) {
	u := fiveMachines(t)
	s := u.server(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.disk.keepFresh(ctx, u.state, time.Hour)
	}()
	defer wg.Wait()
	defer cancel()

	count := func() int {
		m, _ := s.disk.snapshot()
		return m[uuidOK].Sources["etc"].Snapshots
	}
	// The first full read.
	waitFor(t, "the first read", func() bool { return count() == 2 })
	// A third snapshot, then the backup's end as the engine reports it.
	u.snapshot(uuidOK, "web1", "etc", time.Minute, time.Minute, 10)
	u.now = u.now.Add(time.Second)
	u.state.BackupFinished(uuidOK, "web1", "etc", true, u.now.Add(-time.Minute), u.now, "")
	waitFor(t, "the third snapshot", func() bool { return count() == 3 })
	m, _ := s.disk.snapshot()
	if got := m[uuidOK].Names; len(got) != 1 || got[0] != "prod-www-web1" {
		t.Errorf("name links after a machine's read: %v, want prod-www-web1", got)
	}
}

// waitFor polls cond, which reads state another goroutine changes on its
// own clock (the cache's ticker), until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
