package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/registry"
)

// TestPurgeConfirmOnTerminal: on a terminal, purge deletes only once the
// operator typed the machine's UUID; anything else deletes nothing.
func TestPurgeConfirmOnTerminal(t *testing.T) {
	s := newSite(t, nil)
	addSnapshot(t, s, uuidNew, "web1", "etc", time.Hour)
	addSnapshot(t, s, uuidOld, "web2", "etc", time.Hour)
	if err := registry.SaveCache(filepath.Join(s.varDir, registry.CacheFile), registry.Cache{
		Machines: map[string]apiclient.MachineInfo{uuidNew: {UnitName: "web1"}}}); err != nil {
		t.Fatal(err)
	}
	hist := history.New(filepath.Join(s.varDir, history.DirName))
	if _, err := hist.RecordRefresh(history.Listing{Machines: map[string]history.Listed{uuidNew: {Unit: "web1"}},
		OnDisk: []string{uuidNew, uuidOld}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	term := agenttest.OpenTerminal(t)
	g := &globals{stdin: term.TTY, stdout: term.TTY, stderr: term.TTY}
	orphanDir := filepath.Join(s.volume, uuidOld)

	if _, err := term.Master.WriteString("yes\n"); err != nil {
		t.Fatal(err)
	}
	if err := purgeOrphan(g, cfg, uuidOld, false); err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Errorf("answered yes, not the UUID: got %v, want not confirmed", err)
	}
	if _, err := os.Stat(orphanDir); err != nil {
		t.Fatalf("deleted without the UUID typed: %v", err)
	}
	if _, err := term.Master.WriteString(uuidOld + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := purgeOrphan(g, cfg, uuidOld, false); err != nil {
		t.Fatalf("confirmed: %v", err)
	}
	screen := term.Screen()
	if _, err := os.Stat(orphanDir); !os.IsNotExist(err) {
		t.Errorf("confirmed, but %s is still there: %v", orphanDir, err)
	}
	if _, err := os.Stat(filepath.Join(s.volume, uuidNew, "etc.snapshots")); err != nil {
		t.Errorf("the neighbour: %v", err)
	}
	if strings.Count(screen, "Type the machine's UUID to confirm") != 2 || !strings.Contains(screen, "web2") {
		t.Errorf("terminal showed %q, want two prompts naming web2", screen)
	}
}
