package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/health"
)

// A source whose every run fails is watched: the machine is in /metrics
// from the first refresh, each failure counts in a row and survives a
// restart, and check turns CRITICAL naming the source and its error,
// although no snapshot of it exists anywhere.
func TestServeSourceThatNeverSucceeds(t *testing.T) {
	api, s := newAPISite(t, map[string]any{"metrics_listen": "127.0.0.1:0"})
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"f": "data"})
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s)

	before := scrape(t, d.metrics)
	if v := mustSample(t, before, "turku_storage_machine_assigned_timestamp_seconds", "machine", machineUUID, "unit", "web1"); v <= 0 {
		t.Errorf("machine assigned at %v, want a time", v)
	}
	if _, ok := sample(before, "turku_storage_machine_last_success_timestamp_seconds", "machine", machineUUID); ok {
		t.Error("machine last success known before any backup")
	}

	for i := range 2 {
		if res := a.pingWithPassword(t, d, hostKeys, "wrong").Wait(t, waitLong); res.ExitCode == 0 {
			t.Fatalf("ping %d with a wrong rsync password succeeded", i+1)
		}
	}
	fams := scrape(t, d.metrics)
	labels := []string{"machine", machineUUID, "unit", "web1", "source", "etc"}
	if got := mustSample(t, fams, "turku_storage_source_consecutive_failures", labels...); got != 2 {
		t.Errorf("consecutive failures %v, want 2", got)
	}
	if v := mustSample(t, fams, "turku_storage_source_assigned_timestamp_seconds", labels...); v <= 0 {
		t.Errorf("source assigned at %v, want its first attempt", v)
	}
	if _, ok := sample(fams, "turku_storage_source_last_success_timestamp_seconds", labels...); ok {
		t.Error("a source that never succeeded has a last success")
	}
	d.stop(t)

	// The failures are on disk: check sees them without serve.
	r := run(t, context.Background(), nil, "-c", s.dir, "check", "--max-age", "1ms")
	if r.code != health.Critical {
		t.Errorf("check: exit %d, want %d (CRITICAL)", r.code, health.Critical)
	}
	if !strings.Contains(r.stdout, "etc: never backed up") || !strings.Contains(r.stdout, "2 attempts failed in a row") || !strings.Contains(r.stdout, "rsync exited with return code 5") {
		t.Errorf("check does not name the source, its failures and its error:\n%s", r.stdout)
	}

	// logs shows both failures, with the API being turku-api.
	r = run(t, context.Background(), nil, "-c", s.dir, "logs", "web1", "--json")
	var entries []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil || len(entries) != 2 {
		t.Fatalf("logs web1 --json: exit %d, %v, %q", r.code, err, r.stdout)
	}
	if e := entries[0]; e["success"] != false || e["consecutive_failures"] != 2.0 || e["machine"] != machineUUID || !strings.Contains(e["summary"].(string), "rsync exited with return code 5") {
		t.Errorf("newest entry %v", e)
	}
	r = run(t, context.Background(), nil, "-c", s.dir, "logs")
	if lines := strings.Split(r.stdout, "\n"); r.code != 0 || !strings.HasPrefix(lines[0], "FINISHED ") ||
		!regexp.MustCompile(` web1\s+etc\s+failed\(2\)\s+-\s`).MatchString(lines[1]) || !strings.HasPrefix(lines[2], "    ") ||
		!strings.Contains(r.stdout, "\n    meaning: the agent's rsync daemon refused the source's user name or password") {
		t.Errorf("logs: exit %d\n%s", r.code, r.stdout)
	}

	// A restart forgets nothing.
	d2 := startServe(t, s)
	d2.log.WaitFor(t, "read the snapshots and backup history on disk", 1, waitLong)
	fams = scrape(t, d2.metrics)
	if got := mustSample(t, fams, "turku_storage_source_consecutive_failures", labels...); got != 2 {
		t.Errorf("after restart: consecutive failures %v, want 2", got)
	}
	if _, ok := sample(fams, "turku_storage_source_last_attempt_timestamp_seconds", labels...); !ok {
		t.Error("after restart: the last attempt is forgotten")
	}

	// Fixed, the next backup resets the count.
	if res := a.ping(t, d2, hostKeys).Wait(t, waitLong); res.ExitCode != 0 {
		t.Fatalf("backup with the right password: exit %d", res.ExitCode)
	}
	fams = scrape(t, d2.metrics)
	if got := mustSample(t, fams, "turku_storage_source_consecutive_failures", labels...); got != 0 {
		t.Errorf("after a success: consecutive failures %v, want 0", got)
	}
	mustSample(t, fams, "turku_storage_machine_last_success_timestamp_seconds", "machine", machineUUID)
	d2.stop(t)
	if r := run(t, context.Background(), nil, "-c", s.dir, "check"); r.code != health.OK {
		t.Errorf("check after a success: exit %d\n%s", r.code, r.stdout)
	}
	r = run(t, context.Background(), nil, "-c", s.dir, "logs", "-n", "1")
	if !regexp.MustCompile(` web1\s+etc\s+ok\s+etc_`).MatchString(r.stdout) {
		t.Errorf("logs -n 1 after the fix: %q", r.stdout)
	}
}
