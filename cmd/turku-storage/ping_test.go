package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
)

// TestPingForcedCommand runs `turku-storage ping UUID` the way OpenSSH
// runs it from authorized_keys: the agent's reverse forward is already
// bound on 127.0.0.1:PORT (here the agent's daemon itself listens there).
func TestPingForcedCommand(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, map[string]any{"log_file": filepath.Join(t.TempDir(), "storage.log")})
	api.AddStorage("primary", "S")
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"hosts": "127.0.0.1 localhost\n"})
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})

	req, _ := json.Marshal(map[string]any{
		"verbose": true, "port": a.rsyncd.Port,
		"sources": map[string]any{"etc": map[string]string{"username": "etc-user", "password": "etc-pass"}},
	})
	r := runStdin(t, string(req)+"\n.\n", "-c", s.dir, "ping", machineUUID)
	if r.code != 0 {
		t.Fatalf("ping: exit %d", r.code)
	}
	for _, want := range []string{"INFO: Begin: web1 etc", "INFO: End: web1 etc", "INFO: Done"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	reports := api.Reports()
	if len(reports) != 1 || !reports[0].Success {
		t.Fatalf("reports %+v", reports)
	}
	got, err := os.ReadFile(filepath.Join(s.volume, machineUUID, "etc.snapshots", reports[0].Snapshot, "hosts"))
	if err != nil || string(got) != "127.0.0.1 localhost\n" {
		t.Errorf("snapshot content %q %v", got, err)
	}

	// Quiet mode: only errors reach the agent.
	api.SetDue(machineUUID, "etc", true)
	quiet, _ := json.Marshal(map[string]any{"port": a.rsyncd.Port, "sources": map[string]any{"etc": map[string]string{"username": "etc-user", "password": "wrong"}}})
	r = runStdin(t, string(quiet)+"\n.\n", "-c", s.dir, "ping", machineUUID)
	if r.code != 1 || strings.Contains(r.stderr, "INFO:") || !strings.Contains(r.stderr, "ERROR:") {
		t.Errorf("failed quiet pull: exit %d, stderr %q; want 1 with ERROR lines only", r.code, r.stderr)
	}

	r = runStdin(t, "{\"action\": \"restore\", \"verbose\": true, \"port\": 50123}\n.\n", "-c", s.dir, "ping", machineUUID)
	if r.code != 0 || !strings.Contains(r.stderr, "Restore mode active on port 50123.  Good luck.") || !strings.Contains(r.stderr, "Restore mode finished") {
		t.Errorf("restore: exit %d", r.code)
	}

	r = runStdin(t, "not json\n.\n", "-c", s.dir, "ping", machineUUID)
	if r.code != 1 || !strings.Contains(r.stderr, "ERROR: malformed request JSON") {
		t.Errorf("bad request: exit %d", r.code)
	}
}
