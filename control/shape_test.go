package control

import (
	"encoding/json"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/monitor"
)

// TestStatusDocumentKeys pins the keys of the document `status --json`
// prints, every list holding one element: operators script against them,
// so a key may be added but never renamed or dropped.
func TestStatusDocumentKeys(t *testing.T) {
	clk := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	live := monitor.New(monitor.Options{
		Now:            func() time.Time { return clk },
		SpooledReports: func() int { return 1 },
		Volumes: func() []monitor.Volume {
			return []monitor.Volume{{Name: "v", Path: "/srv/v", State: "missing", Message: "m", Err: "e"}}
		},
	})
	live.KeyRefreshed(clk)
	live.SessionStarted(monitor.ModeCheckin, "m-a", "web1", "127.0.0.1:4000", 51000, 0)
	live.SessionStarted(monitor.ModeRestore, "m-b", "db1", "127.0.0.1:4001", 52000, 52001)
	live.BackupPhase("m-a", "web1", "etc", monitor.PhaseRunning, func() int64 { return 1 })
	live.BackupPhase("m-c", "u", "home", monitor.PhaseWaiting, nil)
	live.BackupFinished("m-d", "u", "var", false, clk, clk, "failed")
	live.BackupFinished("m-d", "u", "var", false, clk, clk, "failed")
	live.SetOrphans(map[string]monitor.Orphan{"m-e": {Unit: "gone1", Since: clk}})
	srv, err := NewServer(Options{State: live, Storage: "primary", Version: "v1", Started: clk})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(srv.Status())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	got := keyPaths("", doc)
	want := []string{
		"agents", "agents[].agent_port", "agents[].machine", "agents[].mode", "agents[].remote", "agents[].since", "agents[].unit",
		"backups", "backups[].bytes", "backups[].bytes_per_second", "backups[].elapsed_seconds", "backups[].files",
		"backups[].machine", "backups[].since", "backups[].source", "backups[].state", "backups[].unit",
		"failing", "failing[].consecutive_failures", "failing[].failing_since", "failing[].last_attempt", "failing[].last_error",
		"failing[].machine", "failing[].source", "failing[].unit",
		"keys", "keys.from", "keys.machines", "keys.updated",
		"max_concurrent_backups", "now",
		"orphans", "orphans[].machine", "orphans[].since", "orphans[].unit",
		"restores", "restores[].agent_port", "restores[].machine", "restores[].mode", "restores[].remote", "restores[].restore_port",
		"restores[].since", "restores[].unit",
		"spooled_reports", "started", "storage", "version",
		"volumes", "volumes[].accept_new", "volumes[].accept_new_high_water_pct", "volumes[].error", "volumes[].free_bytes",
		"volumes[].inode_used_pct", "volumes[].inodes", "volumes[].inodes_free", "volumes[].max_inode_usage_pct",
		"volumes[].max_usage_pct", "volumes[].message", "volumes[].name", "volumes[].path", "volumes[].size_bytes",
		"volumes[].state", "volumes[].used_pct",
		"waiting", "waiting[].bytes", "waiting[].bytes_per_second", "waiting[].elapsed_seconds", "waiting[].machine",
		"waiting[].since", "waiting[].source", "waiting[].state", "waiting[].unit",
	}
	// Every key of want is there; any other is an addition.
	var missing []string
	for _, k := range want {
		if !slices.Contains(got, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("keys missing from the document: %v\n(all: %s)", missing, cmp.Diff(want, got))
	}
}

// keyPaths lists the key paths of a decoded JSON value, sorted; a list's
// elements are read as "name[]".
func keyPaths(prefix string, v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out = append(out, p)
			out = append(out, keyPaths(p, e)...)
		}
	case []any:
		for _, e := range v {
			for _, p := range keyPaths(prefix+"[]", e) {
				if !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
