package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeReloadMetrics: a SIGHUP with an invalid configuration keeps
// serve running and turns turku_storage_config_last_reload_successful to
// 0, keeping the time of the last good load; the next good reload turns it
// back to 1 and moves that time on.
func TestServeReloadMetrics(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]any{"metrics_listen": "127.0.0.1:0"})
	d := startServe(t, s)
	const (
		okName   = "turku_storage_config_last_reload_successful"
		timeName = "turku_storage_config_last_reload_success_timestamp_seconds"
	)
	fams := scrape(t, d.metrics)
	started := mustSample(t, fams, timeName)
	if ok := mustSample(t, fams, okName); ok != 1 || started <= 0 {
		t.Fatalf("at start: %s %v, %s %v; want 1 and a time", okName, ok, timeName, started)
	}

	bad := filepath.Join(s.dir, "config.d", "20-edit.json")
	if err := os.WriteFile(bad, []byte(`{"secret": "CHANGE-ME"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d.hup <- struct{}{}
	d.log.WaitFor(t, "configuration reload failed", 1, waitLong)
	if !strings.Contains(d.log.String(), `config.d/20-edit.json:1: secret: \"CHANGE-ME\" is a placeholder`) {
		t.Errorf("the failed reload's log does not name the problem")
	}
	fams = scrape(t, d.metrics)
	if ok, at := mustSample(t, fams, okName), mustSample(t, fams, timeName); ok != 0 || at != started {
		t.Errorf("after a refused reload: %s %v, %s %v; want 0 and the start's %v", okName, ok, timeName, at, started)
	}

	if err := os.WriteFile(bad, []byte(`{"secret": "9c1f0b7e5a3d"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d.hup <- struct{}{}
	d.log.WaitFor(t, "configuration reloaded", 1, waitLong)
	fams = scrape(t, d.metrics)
	if ok, at := mustSample(t, fams, okName), mustSample(t, fams, timeName); ok != 1 || at < started {
		t.Errorf("after a good reload: %s %v, %s %v; want 1 and a time from %v on", okName, ok, timeName, at, started)
	}
	if d.log.Count("configuration reload failed") != 1 {
		t.Errorf("the good reload was logged as failed")
	}
}

// TestStatusAfterReload: status shows max_concurrent_backups as the
// backup slots enforce it: as a reload set it, not as serve started with
// it, and unchanged by a refused reload.
func TestStatusAfterReload(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]any{"max_concurrent_backups": 1})
	d := startServe(t, s)
	if st := statusJSON(t, s); st.MaxConcurrentBackups != 1 {
		t.Fatalf("at start: status shows %d slots, want 1", st.MaxConcurrentBackups)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "config.d", "20-edit.json"), []byte(`{"max_concurrent_backups": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d.hup <- struct{}{}
	d.log.WaitFor(t, "configuration reloaded", 1, waitLong)
	if st := statusJSON(t, s); st.MaxConcurrentBackups != 3 {
		t.Errorf("after the reload: status shows %d slots, want 3", st.MaxConcurrentBackups)
	}
	// A refused reload changes nothing, the slots status reads included;
	// nor does an edit not yet reloaded.
	if err := os.WriteFile(filepath.Join(s.dir, "config.d", "20-edit.json"), []byte(`{"max_concurrent_backups": 7, "secret": "CHANGE-ME"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d.hup <- struct{}{}
	d.log.WaitFor(t, "configuration reload failed", 1, waitLong)
	// status reads the configuration for the socket's path: a valid one,
	// with a bound serve has not been told of.
	if err := os.WriteFile(filepath.Join(s.dir, "config.d", "20-edit.json"), []byte(`{"max_concurrent_backups": 5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	st := statusJSON(t, s)
	if st.MaxConcurrentBackups != 3 {
		t.Errorf("after a refused reload: status shows %d slots, want the 3 in force", st.MaxConcurrentBackups)
	}
	var b strings.Builder
	if err := st.WriteText(&b, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "BACKUPS RUNNING (0 of 3 slots)") {
		t.Errorf("status table after the reload:\n%s\nwant 0 of 3 slots", b.String())
	}
}
