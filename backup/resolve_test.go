package backup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
)

// TestResolveMachineAmbiguousName: an intruder registered with another
// machine's environment, service and unit names. "web1" (or the full link
// name) must not pick either machine silently.
func TestResolveMachineAmbiguousName(t *testing.T) {
	t.Parallel()
	const (
		victim   = "11111111-2222-4333-8444-555555555555"
		intruder = "66666666-7777-4888-8999-aaaaaaaaaaaa"
	)
	varDir, volume := t.TempDir(), t.TempDir()
	machines := filepath.Join(varDir, "machines")
	for _, uuid := range []string{victim, intruder} {
		dir := filepath.Join(volume, uuid)
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
	registered := func() (map[string]apiclient.MachineInfo, error) {
		return map[string]apiclient.MachineInfo{victim: info, intruder: info}, nil
	}
	for _, name := range []string{"web1", "prod-www-web1"} {
		_, _, err := ResolveMachine(varDir, name, registered)
		if err == nil || !strings.Contains(err.Error(), "ambiguous") || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), intruder) {
			t.Errorf("ResolveMachine %s: %v; want an ambiguity naming both machines", name, err)
		}
	}
	if uuid, dir, err := ResolveMachine(varDir, victim, registered); err != nil || uuid != victim || dir != filepath.Join(machines, victim) {
		t.Errorf("ResolveMachine by UUID: %q %q %v", uuid, dir, err)
	}
}

// TestResolveMachine: a UUID, a name link and a unit name of the key cache
// each find the machine; anything else is an error naming the input.
func TestResolveMachine(t *testing.T) {
	t.Parallel()
	const (
		web1 = "11111111-2222-4333-8444-555555555555"
		db1  = "66666666-7777-4888-8999-aaaaaaaaaaaa" // registered, no backups yet
	)
	varDir, volume := t.TempDir(), t.TempDir()
	machines := MachinesDir(varDir)
	if machines != filepath.Join(varDir, "machines") {
		t.Fatalf("MachinesDir %q, want VAR_DIR/machines", machines)
	}
	if err := os.MkdirAll(filepath.Join(volume, web1), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(machines, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(volume, web1), filepath.Join(machines, web1)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(web1, filepath.Join(machines, "prod-www-web1")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(machines, "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cache := func() (map[string]apiclient.MachineInfo, error) {
		return map[string]apiclient.MachineInfo{
			web1: {EnvironmentName: "prod", ServiceName: "www", UnitName: "web1"},
			db1:  {UnitName: "db1"},
		}, nil
	}
	errNoCache := errors.New("no machine key cache")
	noCache := func() (map[string]apiclient.MachineInfo, error) { return nil, errNoCache }

	tests := []struct {
		name, machine string
		registered    func() (map[string]apiclient.MachineInfo, error)
		wantUUID      string
		wantDir       string
		wantErr       string
	}{
		{"UUID", web1, cache, web1, filepath.Join(machines, web1), ""},
		{"name link", "prod-www-web1", cache, web1, filepath.Join(machines, "prod-www-web1"), ""},
		{"name link without a cache", "prod-www-web1", noCache, web1, filepath.Join(machines, "prod-www-web1"), ""},
		{"unit name", "web1", cache, web1, filepath.Join(machines, web1), ""},
		{"unit name without a cache", "web1", noCache, "", "", `machine "web1": no such machine in ` + machines + ": no machine key cache"},
		{"unknown unit", "db9", cache, "", "", `no machine has unit name "db9"`},
		{"registered, no backups", "db1", cache, "", "", `machine "db1" (` + db1 + `): no backups in ` + machines + " yet"},
		{"not a directory", "stray", cache, "", "", `machine "stray": ` + filepath.Join(machines, "stray") + " is not a directory"},
		{"parent", "..", cache, "", "", `machine "..": not a machine UUID or unit name`},
		{"path", "../" + web1, cache, "", "", "not a machine UUID or unit name"},
		{"empty", "", cache, "", "", "not a machine UUID or unit name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uuid, dir, err := ResolveMachine(varDir, tt.machine, tt.registered)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q %q %v; want error %q", uuid, dir, err, tt.wantErr)
				}
				if strings.Contains(tt.name, "without a cache") && !errors.Is(err, errNoCache) {
					t.Errorf("error %v does not wrap the cache's error", err)
				}
				return
			}
			if err != nil || uuid != tt.wantUUID || dir != tt.wantDir {
				t.Errorf("got %q %q %v; want %q %q", uuid, dir, err, tt.wantUUID, tt.wantDir)
			}
		})
	}
}
