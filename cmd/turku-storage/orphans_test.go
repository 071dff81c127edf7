package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// TestServeOrphans: a key refresh that no longer lists a machine with
// backups here makes it an orphan — listed by `orphans`, marked by
// `snapshots`, shown by `status` and /metrics — and its key, offered by
// the real OpenSSH client, is logged as a machine no longer assigned here,
// also after a restart. purge refuses without confirmation and for an
// assigned machine, and with --yes deletes the orphan only.
func TestServeOrphans(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, map[string]any{"metrics_listen": "127.0.0.1:0"})
	newAgent(t, api, machineUUID, "web1", map[string]string{"f": "1"})
	moved := newAgent(t, api, uuidOld, "web2", map[string]string{"f": "1"})
	addSnapshot(t, s, machineUUID, "web1", "etc", time.Hour)
	addSnapshot(t, s, uuidOld, "web2", "etc", 3*time.Hour)
	hostKeys := registered(t, api, s)
	d := startServe(t, s, "--debug")
	d.log.WaitFor(t, "refreshed machines from API", 1, waitLong)
	d.log.WaitFor(t, "assigned machines recorded", 2, waitLong) // the cache's, the API's
	if v := mustSample(t, scrape(t, d.metrics), "turku_storage_orphaned_machines"); v != 0 {
		t.Fatalf("turku_storage_orphaned_machines %v while both are assigned", v)
	}

	// turku-api moved web2 to another storage unit.
	api.RemoveMachine(uuidOld)
	recorded := d.log.Count("assigned machines recorded")
	d.hup <- struct{}{}
	d.log.WaitFor(t, "assigned machines recorded", recorded+1, waitLong)
	fams := scrape(t, d.metrics)
	if v := mustSample(t, fams, "turku_storage_orphaned_machines"); v != 1 {
		t.Errorf("turku_storage_orphaned_machines %v, want 1", v)
	}
	if v, ok := sample(fams, "turku_storage_orphaned_machine_since_timestamp_seconds", "machine", uuidOld, "unit", "web2"); !ok || v <= 0 {
		t.Errorf("no orphaned-since series for %s (web2): %v %v", uuidOld, v, ok)
	}
	if _, ok := sample(fams, "turku_storage_source_last_success_timestamp_seconds", "machine", uuidOld); ok {
		t.Errorf("the orphan's source is still exported as a source of this unit")
	}

	r := run(t, context.Background(), nil, "-c", s.dir, "orphans", "--json")
	var listed []backup.Orphan
	if err := json.Unmarshal([]byte(r.stdout), &listed); r.code != 0 || err != nil {
		t.Fatalf("orphans --json: exit %d, %v", r.code, err)
	}
	if len(listed) != 1 || listed[0].UUID != uuidOld || listed[0].Unit != "web2" || listed[0].Since.IsZero() {
		t.Errorf("orphans listed %+v, want %s (web2) with its time", listed, uuidOld)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "orphans"); !strings.Contains(r.stdout, uuidOld) || strings.Contains(r.stdout, machineUUID) {
		t.Errorf("orphans table lists the wrong machines:\n%s", r.stdout)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "snapshots"); !strings.Contains(r.stdout, "prod-www-web2 [orphan for") ||
		strings.Contains(r.stdout, "prod-www-web1 [orphan") {
		t.Errorf("snapshots does not mark the orphan alone:\n%s", r.stdout)
	}
	if st := statusJSON(t, s); len(st.Orphans) != 1 || st.Orphans[0].Machine != uuidOld {
		t.Errorf("status orphans %+v, want %s", st.Orphans, uuidOld)
	}

	// The moved machine's agent still has this unit in its old config.
	const line = "machine web2 (" + uuidOld + ") is no longer assigned to this storage unit"
	if res := moved.ping(t, d, hostKeys).Wait(t, waitLong); res.ExitCode != 255 {
		t.Errorf("moved machine's ssh exit %d, want 255", res.ExitCode)
	}
	d.log.WaitFor(t, line, 1, waitLong)
	if v := mustSample(t, scrape(t, d.metrics), "turku_storage_ssh_departed_key_refusals_total"); v != 1 {
		t.Errorf("turku_storage_ssh_departed_key_refusals_total %v, want 1", v)
	}

	// A restart keeps the departed key (and the orphan's time).
	d.stop(t)
	d2 := startServe(t, s, "--debug")
	d2.log.WaitFor(t, "refreshed machines from API", 1, waitLong)
	if res := moved.ping(t, d2, hostKeys).Wait(t, waitLong); res.ExitCode != 255 {
		t.Errorf("after restart: ssh exit %d, want 255", res.ExitCode)
	}
	d2.log.WaitFor(t, line, 1, waitLong)
	// orphan_expiry is off by default: the refreshes purged nothing.
	d2.log.WaitFor(t, "orphan_expiry not set; no orphan purged", 1, waitLong)

	orphanDir := filepath.Join(s.volume, uuidOld)
	mustBeThere := func(when string) {
		t.Helper()
		for _, p := range []string{filepath.Join(s.volume, machineUUID, "etc.snapshots"), filepath.Join(s.varDir, "machines", machineUUID)} {
			if _, err := os.Lstat(p); err != nil {
				t.Fatalf("%s: %s: %v", when, p, err)
			}
		}
	}
	// No terminal, no --yes: refused, nothing deleted.
	r = run(t, context.Background(), nil, "-c", s.dir, "orphans", "purge", uuidOld)
	if r.code == 0 || !strings.Contains(r.stderr, "no terminal to confirm on, and no --yes") {
		t.Errorf("purge without --yes: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(orphanDir); err != nil {
		t.Fatalf("purge without confirmation deleted the orphan: %v", err)
	}
	// An assigned machine is refused even with --yes.
	r = run(t, context.Background(), nil, "-c", s.dir, "orphans", "purge", "--yes", machineUUID)
	if r.code == 0 || !strings.Contains(r.stderr, "assigned to this storage unit") {
		t.Errorf("purge of an assigned machine: exit %d, stderr %q", r.code, r.stderr)
	}
	mustBeThere("after refusing an assigned machine")
	// By its name link, with --yes: the orphan goes, its neighbour stays.
	r = run(t, context.Background(), nil, "-c", s.dir, "orphans", "purge", "--yes", "prod-www-web2")
	if r.code != 0 {
		t.Fatalf("purge --yes: exit %d: %s", r.code, r.stderr)
	}
	for _, p := range []string{orphanDir, filepath.Join(s.varDir, "machines", uuidOld), filepath.Join(s.varDir, "machines", "prod-www-web2")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s after purge: %v, want it gone", p, err)
		}
	}
	mustBeThere("after purge")
	if r := run(t, context.Background(), nil, "-c", s.dir, "orphans"); !strings.Contains(r.stdout, "No orphaned machines.") {
		t.Errorf("orphans after purge:\n%s", r.stdout)
	}
}

// TestServeOrphanExpiry: with orphan_expiry set, serve purges after a key
// refresh the orphans older than it, logging each, and keeps the younger;
// when most machines here are orphans (a renamed unit, a coordinator that
// lost its machines) it purges nothing and says so.
func TestServeOrphanExpiry(t *testing.T) {
	const young = "33333333-cccc-4ccc-8ccc-cccccccccccc"
	assigned := []string{machineUUID, "44444444-dddd-4ddd-8ddd-dddddddddddd", "55555555-eeee-4eee-8eee-eeeeeeeeeeee"}
	for _, tt := range []struct {
		name      string
		listed    []string // what the API assigns here
		wantPurge bool
	}{
		{"expired orphan purged", assigned, true},
		{"most machines orphaned", assigned[:1], false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api, s := newAPISite(t, map[string]any{"orphan_expiry": "30d"})
			for _, u := range tt.listed {
				api.AddMachine("primary", u, apiclient.MachineInfo{UnitName: u[:4], SSHPublicKey: agenttest.NewKey(t).Authorized})
			}
			for _, u := range append([]string{uuidOld, young}, assigned...) {
				addSnapshot(t, s, u, u[:4], "etc", time.Hour)
			}
			// uuidOld left this unit 100 days ago, young yesterday.
			hist := history.New(filepath.Join(s.varDir, history.DirName))
			now := time.Now()
			before := map[string]history.Listed{}
			for _, u := range assigned {
				before[u] = history.Listed{Unit: u[:4]}
			}
			for _, step := range []struct {
				at     time.Time
				onDisk []string
			}{{now.Add(-100 * 24 * time.Hour), append([]string{uuidOld}, assigned...)}, {now.Add(-24 * time.Hour), append([]string{uuidOld, young}, assigned...)}} {
				if _, err := hist.RecordRefresh(history.Listing{Machines: before, OnDisk: step.onDisk}, step.at); err != nil {
					t.Fatal(err)
				}
			}
			registered(t, api, s)
			d := startServe(t, s, "--debug")
			if tt.wantPurge {
				d.log.WaitFor(t, "expired orphan purged", 1, waitLong)
			} else {
				d.log.WaitFor(t, "orphan_expiry: not purging automatically", 1, waitLong)
			}
			d.log.WaitFor(t, "expired orphans purged", 1, waitLong)
			if tt.wantPurge != strings.Contains(d.log.String(), `msg="expired orphan purged (orphan_expiry)" machine=`+uuidOld) {
				t.Errorf("purge of %s logged: %v, want %v", uuidOld, !tt.wantPurge, tt.wantPurge)
			}
			if _, err := os.Lstat(filepath.Join(s.volume, uuidOld)); tt.wantPurge != os.IsNotExist(err) {
				t.Errorf("the expired orphan: %v; want it purged: %v", err, tt.wantPurge)
			}
			for _, u := range append([]string{young}, assigned...) {
				if _, err := os.Stat(filepath.Join(s.volume, u, "etc.snapshots")); err != nil {
					t.Errorf("%s: %v, want it kept", u, err)
				}
			}
		})
	}
}

// TestCheckOrphans: an orphan's sources are not stale however old their
// last snapshot: check stays OK while the orphan is recent and turns
// WARNING, never CRITICAL, after orphan_warn_after; a machine that left
// with only a history here is not rated at all.
func TestCheckOrphans(t *testing.T) {
	const gone = "33333333-cccc-4ccc-8ccc-cccccccccccc"
	tests := []struct {
		name      string
		orphanFor time.Duration
		wantCode  int
		wantFirst string
		wantLine  string
	}{
		{"recent orphan", time.Hour, 0,
			`TURKU-STORAGE OK - 1 source of 2 machines backed up within 48h0m0s; 1 orphaned machine (no longer assigned here; not counted as stale) |`, ""},
		{"old orphan", 20 * 24 * time.Hour, 1,
			`TURKU-STORAGE WARNING - 1 source of 2 machines backed up within 48h0m0s; 1 orphaned machine, 1 of them for over 14 days: purge them |`,
			"WARNING: " + uuidOld + " (prod-www-web2): no longer assigned to this storage unit for 20 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSite(t, nil)
			addSnapshot(t, s, uuidNew, "web1", "etc", time.Hour)
			addSnapshot(t, s, uuidOld, "web2", "etc", 30*24*time.Hour) // stale, were it still here
			addAttempt(t, s, gone, "db", "etc", false, 72*time.Hour, "rsync failed")
			hist := history.New(filepath.Join(s.varDir, history.DirName))
			at := time.Now().Add(-tt.orphanFor)
			if _, err := hist.RecordRefresh(history.Listing{Machines: map[string]history.Listed{uuidNew: {Unit: "web1"}},
				OnDisk: []string{uuidNew, uuidOld}}, at); err != nil {
				t.Fatal(err)
			}
			r := run(t, context.Background(), nil, "-c", s.dir, "check")
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d", r.code, tt.wantCode)
			}
			first, rest, _ := strings.Cut(r.stdout, "\n")
			if !strings.HasPrefix(first, tt.wantFirst) || !strings.Contains(first, " orphans=1;;;0") {
				t.Errorf("first line %q, want it to start %q and carry orphans=1", first, tt.wantFirst)
			}
			if tt.wantLine != "" && !strings.Contains(rest, tt.wantLine) {
				t.Errorf("details %q lack %q", rest, tt.wantLine)
			}
			if strings.Contains(r.stdout, "CRITICAL") || strings.Contains(r.stdout, gone) {
				t.Errorf("an orphan or a departed machine was rated as stale:\n%s", r.stdout)
			}
		})
	}
}

// TestCheckLastMachineLeft: a drained unit whose last machine moved away
// and was purged keeps that machine's history; the refresh now lists no
// machine at all, and check must not rate the history as a stale source
// (it did, CRITICAL once the last backup here was older than --max-age).
// While no refresh was ever recorded, the history still counts.
func TestCheckLastMachineLeft(t *testing.T) {
	const gone = "33333333-cccc-4ccc-8ccc-cccccccccccc"
	for _, recorded := range []bool{true, false} {
		t.Run(fmt.Sprintf("refresh recorded %v", recorded), func(t *testing.T) {
			t.Parallel()
			s := newSite(t, nil)
			addAttempt(t, s, gone, "web1", "etc", true, 72*time.Hour, "")
			hist := history.New(filepath.Join(s.varDir, history.DirName))
			if recorded {
				now := time.Now()
				if _, err := hist.RecordRefresh(history.Listing{Machines: map[string]history.Listed{gone: {Unit: "web1", Key: "k"}},
					OnDisk: []string{gone}}, now.Add(-80*time.Hour)); err != nil {
					t.Fatal(err)
				}
				// Moved to another unit, then purged here: no machine listed, none on disk.
				if _, err := hist.RecordRefresh(history.Listing{Machines: map[string]history.Listed{}}, now.Add(-time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			r := run(t, context.Background(), nil, "-c", s.dir, "check")
			if recorded {
				if r.code != 0 || strings.Contains(r.stdout, gone) || !strings.HasPrefix(r.stdout, "TURKU-STORAGE OK - 0 sources of 0 machines backed up") {
					t.Errorf("exit %d, want 0 with the departed machine left out:\n%s", r.code, r.stdout)
				}
				return
			}
			if r.code != 2 || !strings.Contains(r.stdout, "CRITICAL: "+gone+" etc: last successful backup finished 72h") {
				t.Errorf("exit %d, want 2 naming %s (no refresh recorded: its history counts):\n%s", r.code, gone, r.stdout)
			}
		})
	}
}
