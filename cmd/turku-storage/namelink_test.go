package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/registry"
)

// TestSnapshotsAmbiguousName: an intruder registered with another
// machine's environment, service and unit names. "snapshots web1" (or the
// full link name) must not pick either machine silently.
func TestSnapshotsAmbiguousName(t *testing.T) {
	const (
		victim   = "11111111-2222-4333-8444-555555555555"
		intruder = "66666666-7777-4888-8999-aaaaaaaaaaaa"
	)
	s := newSite(t, nil)
	machines := filepath.Join(s.varDir, "machines")
	for _, uuid := range []string{victim, intruder} {
		dir := filepath.Join(s.volume, uuid)
		if err := os.MkdirAll(filepath.Join(dir, "etc.snapshots"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(machines, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(dir, filepath.Join(machines, uuid)); err != nil {
			t.Fatal(err)
		}
	}
	// The link the victim made; the intruder's checkins never take it.
	if err := os.Symlink(victim, filepath.Join(machines, "prod-www-web1")); err != nil {
		t.Fatal(err)
	}
	info := apiclient.MachineInfo{EnvironmentName: "prod", ServiceName: "www", UnitName: "web1"}
	if err := registry.SaveCache(filepath.Join(s.varDir, registry.CacheFile), registry.Cache{
		Updated:  time.Now(),
		Machines: map[string]apiclient.MachineInfo{victim: info, intruder: info},
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web1", "prod-www-web1"} {
		r := run(t, context.Background(), nil, "-c", s.dir, "snapshots", name)
		if r.code == 0 || !strings.Contains(r.stderr, "ambiguous") || !strings.Contains(r.stderr, victim) || !strings.Contains(r.stderr, intruder) {
			t.Errorf("snapshots %s: exit %d, stderr %q; want an ambiguity naming both machines", name, r.code, r.stderr)
		}
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "snapshots", victim); r.code != 0 {
		t.Errorf("snapshots by UUID: exit %d: %s", r.code, r.stderr)
	}
}
