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

// TestServeMakesFilesPrivate: a storage unit migrated from the old code
// has a 0755 VAR_DIR and machine directories, whose snapshots hold what
// agents sent (setuid binaries, device nodes). serve makes them private at
// start, and the key cache and coordinator database 0600, logging each
// change.
func TestServeMakesFilesPrivate(t *testing.T) {
	s := newSite(t, nil)
	mdir := filepath.Join(s.volume, machineUUID)
	machines := filepath.Join(s.varDir, "machines")
	for _, d := range []string{mdir, machines} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(mdir, filepath.Join(machines, machineUUID)); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(s.varDir, registry.CacheFile)
	if err := os.WriteFile(cache, []byte(`{"version": 1, "machines": {}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.varDir, machines, mdir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := startServe(t, s)
	want := map[string]os.FileMode{
		s.varDir: 0o700, machines: 0o700, mdir: 0o700, cache: 0o600,
		filepath.Join(s.varDir, coordinatorDB): 0o600,
	}
	for p, mode := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %#o, want %#o", p, got, mode)
		}
	}
	log := d.log.String()
	for _, p := range []string{s.varDir, mdir, cache} {
		if !strings.Contains(log, p) {
			t.Errorf("change of %s not logged", p)
		}
	}
}

// TestServeWarnsOldRsync: an rsync older than the client-side fixes lets
// a hostile agent's daemon write outside the destination; serve warns,
// naming the version found and the fixed one, and runs on (distributions
// backport fixes).
func TestServeWarnsOldRsync(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "rsync")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'rsync  version 3.2.7  protocol version 31'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSite(t, map[string]any{"rsync_command": fake})
	d := startServe(t, s)
	log := d.log.String()
	for _, want := range []string{"rsync is older than its security fixes", "version=3.2.7", "fixed=3.5.0", "CVE-2024-12087"} {
		if !strings.Contains(log, want) {
			t.Errorf("serve log lacks %q:\n%s", want, log)
		}
	}
}
