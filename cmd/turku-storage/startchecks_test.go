package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/registry"
)

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
		filepath.Join(s.varDir, "coordinator.sqlite3"): 0o600,
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
	fake := agenttest.Script(t, "echo 'rsync  version 3.2.7  protocol version 31'\n")
	s := newSite(t, map[string]any{"rsync_command": fake})
	d := startServe(t, s)
	log := d.log.String()
	for _, want := range []string{"rsync is older than its security fixes", "version=3.2.7", "fixed=3.5.0", "CVE-2024-12087"} {
		if !strings.Contains(log, want) {
			t.Errorf("serve log lacks %q:\n%s", want, log)
		}
	}
}
