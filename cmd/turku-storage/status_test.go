package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
	"github.com/turku-backup/turku-storage/control"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/monitor"
)

// statusJSON runs `status --json` in-process and decodes it; it fails the
// test if the command fails.
func statusJSON(t *testing.T, s *site) *control.Status {
	t.Helper()
	var out, errOut syncWriter
	root := newRootWith(&globals{stdout: &out, stderr: &errOut})
	root.SetArgs([]string{"-c", s.dir, "status", "--json"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("status --json: %v\n%s", err, errOut.String())
	}
	var st control.Status
	if err := json.Unmarshal([]byte(out.String()), &st); err != nil {
		t.Fatalf("status --json printed no JSON document: %v\n%s", err, out.String())
	}
	return &st
}

// waitStatus runs `status --json` until cond holds. A status is a sample
// of a changing state; there is no event to wait on from outside.
func waitStatus(t *testing.T, s *site, what string, cond func(*control.Status) bool) *control.Status {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		st := statusJSON(t, s)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			data, _ := json.MarshalIndent(st, "", "  ")
			t.Fatalf("status never showed %s; last:\n%s", what, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// slowAgent is an agent whose daemon sends at most kibps KiB/s (rsync
// --daemon --bwlimit, as on a slow link), with one random file of size
// bytes (--compress gains nothing on it) in its module etc.
func slowAgent(t *testing.T, api *apitest.Server, uuid, unit string, size, kibps int) *agent {
	t.Helper()
	a := &agent{uuid: uuid, key: agenttest.NewKey(t), data: t.TempDir()}
	big := make([]byte, size)
	rand.Read(big)
	agenttest.WriteTree(t, a.data, map[string]string{"big.bin": string(big), "small": "x\n"})
	api.AddMachine("primary", uuid, apiclient.MachineInfo{UnitName: unit, SSHPublicKey: a.key.Authorized})
	a.rsyncd = agenttest.StartRsyncd(t, "127.0.0.1", []agenttest.Module{{Name: "etc", Path: a.data, User: "etc-user", Password: "etc-pass"}},
		fmt.Sprintf("--bwlimit=%d", kibps))
	return a
}

// TestStatusShowsWaitingBackup: with one backup slot, a second agent's
// source waits while the first runs, and status says so.
func TestStatusShowsWaitingBackup(t *testing.T) {
	api := apitest.New()
	t.Cleanup(api.Close)
	s := newSite(t, map[string]any{"api_url": api.BaseURL(), "max_concurrent_backups": 1})
	const other = "0d9b4e3c-1f2a-4b5c-8d7e-6f5a4b3c2d1e"
	slow := slowAgent(t, api, machineUUID, "web1", 256<<10, 64)
	fast := newAgent(t, api, other, "db1", map[string]string{"f": "1\n"})
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	api.AddSource(other, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s)

	first := slow.ping(t, d, hostKeys)
	waitStatus(t, s, "web1 running", func(st *control.Status) bool {
		return len(st.Backups) == 1 && st.Backups[0].Machine == machineUUID
	})
	second := fast.ping(t, d, hostKeys)
	st := waitStatus(t, s, "db1 waiting", func(st *control.Status) bool { return len(st.Waiting) == 1 })
	if w := st.Waiting[0]; w.Machine != other || w.Unit != "db1" || w.Source != "etc" || w.State != monitor.PhaseWaiting {
		t.Errorf("waiting %+v, want db1's etc", w)
	}
	if len(st.Backups) != 1 || st.Backups[0].Machine != machineUUID || st.MaxConcurrentBackups != 1 || len(st.Agents) != 2 {
		t.Errorf("backups %+v, agents %d, slots %d: want web1 running alone in the one slot", st.Backups, len(st.Agents), st.MaxConcurrentBackups)
	}
	for _, sess := range []*agenttest.Session{first, second} {
		if res := sess.Wait(t, waitLong); res.ExitCode != 0 {
			t.Errorf("ssh exit %d", res.ExitCode)
		}
	}
	if !strings.Contains(second.Stderr().String(), "Waiting for a free backup slot") {
		t.Error("the waiting agent was not told")
	}
	waitStatus(t, s, "nothing running or waiting", func(st *control.Status) bool {
		return len(st.Backups)+len(st.Waiting)+len(st.Agents) == 0
	})
}

// TestStatusDuringBackup: while an agent's daemon sends slowly (its
// --bwlimit), status shows the agent, the running backup and its bytes
// growing; afterwards neither.
func TestStatusDuringBackup(t *testing.T) {
	api := apitest.New()
	t.Cleanup(api.Close)
	s := newSite(t, map[string]any{"api_url": api.BaseURL()})
	// 64 KiB/s from the agent's daemon: about six seconds for the pull.
	const size = 384 << 10
	a := slowAgent(t, api, machineUUID, "web1", size, 64)
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s)

	st := statusJSON(t, s)
	// The keys come from the cache update-config wrote, then from serve's
	// first refresh, which may already have run.
	if len(st.Agents)+len(st.Backups) != 0 || st.Keys.Machines != 1 || (st.Keys.From != "cache" && st.Keys.From != "api") || st.Keys.Updated.IsZero() {
		t.Fatalf("idle status: agents %+v, backups %+v, keys %+v", st.Agents, st.Backups, st.Keys)
	}
	if len(st.Volumes) != 1 || st.Volumes[0].Path != s.volume || st.Volumes[0].FreeBytes <= 0 || st.Volumes[0].SizeBytes < st.Volumes[0].FreeBytes {
		t.Errorf("volumes %+v, want the site's volume with its space", st.Volumes)
	}

	sess := a.ping(t, d, hostKeys)
	first := waitStatus(t, s, "the backup receiving bytes", func(st *control.Status) bool {
		return len(st.Backups) == 1 && st.Backups[0].Bytes > 0
	})
	b := first.Backups[0]
	if b.Machine != machineUUID || b.Unit != "web1" || b.Source != "etc" || b.State != monitor.PhaseRunning || b.Files == nil {
		t.Errorf("running backup %+v", b)
	}
	if len(first.Agents) != 1 || first.Agents[0].Mode != monitor.ModeCheckin || first.Agents[0].Unit != "web1" ||
		first.Agents[0].AgentPort != a.rsyncd.Port || !strings.HasPrefix(first.Agents[0].Remote, "127.0.0.1:") {
		t.Errorf("agents %+v, want web1 checking in from 127.0.0.1 with port %d", first.Agents, a.rsyncd.Port)
	}
	later := waitStatus(t, s, "the backup's bytes growing", func(st *control.Status) bool {
		return len(st.Backups) == 1 && st.Backups[0].Bytes > b.Bytes
	})
	if got := later.Backups[0]; got.ElapsedSeconds < b.ElapsedSeconds || got.BytesPerSecond <= 0 || got.Bytes > size+64<<10 {
		t.Errorf("later sample %+v after %+v", got, b)
	}

	if res := sess.Wait(t, waitLong); res.ExitCode != 0 {
		t.Fatalf("backup: ssh exit %d", res.ExitCode)
	}
	// The report is delivered in the background after the session.
	d.log.WaitFor(t, `msg="report delivered"`, 1, waitLong)
	// The session ends after its exit status is sent; status follows.
	done := waitStatus(t, s, "no running backup and no agent", func(st *control.Status) bool {
		return len(st.Backups) == 0 && len(st.Agents) == 0
	})
	if done.SpooledReports != 0 {
		t.Errorf("spooled reports %d, want 0", done.SpooledReports)
	}
	if r := api.Reports(); len(r) != 1 || !r[0].Success {
		t.Errorf("reports %+v", r)
	}
}

// TestStatusWithoutServe: a clear error, not a hang.
func TestStatusWithoutServe(t *testing.T) {
	s := newSite(t, nil)
	r := run(t, context.Background(), nil, "-c", s.dir, "status", "--json")
	if r.code != 1 || !strings.Contains(r.stderr, "serve is not running") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	files := int64(12)
	st := &control.Status{Storage: "primary", Version: "1.0", Started: now.Add(-time.Hour), MaxConcurrentBackups: 4, Status: monitor.Status{
		Now: now,
		Agents: []monitor.Session{
			{Machine: "m-1", Unit: "web1", Remote: "192.0.2.1:5000", Mode: "checkin", Since: now.Add(-90 * time.Second), AgentPort: 51000},
			{Machine: "m-2", Remote: "192.0.2.2:5000", Mode: "restore", Since: now.Add(-time.Minute), AgentPort: 52000, RestorePort: 52001},
		},
		Backups: []monitor.Backup{{Machine: "m-1", Unit: "web1", Source: "etc", Since: now.Add(-80 * time.Second), Bytes: 3 << 20, BytesPerSecond: 1 << 20, Files: &files}},
		Waiting: []monitor.Backup{{Machine: "m-3", Source: "home", Since: now.Add(-5 * time.Second)}},
		Keys:    monitor.Keys{Machines: 3, Updated: now.Add(-2 * time.Minute), From: "api"},
		Volumes: []monitor.Volume{{Name: "default", Path: "/srv/turku", AcceptNew: true, HighWaterPct: 80, SizeBytes: 100 << 30, FreeBytes: 40 << 30, UsedPct: 60},
			{Name: "old", Path: "/srv/old", State: "read-only", SizeBytes: 10 << 30, FreeBytes: 1 << 30, UsedPct: 90, Inodes: 1000, InodesFree: 10, InodeUsedPct: 99},
			{Name: "gone", Path: "/srv/gone", State: "not mounted", Err: "volume gone is not mounted (marker .turku-storage-volume missing)"}},
		SpooledReports: 2,
	}}
	var b strings.Builder
	if err := printStatus(&b, st, false); err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`^storage unit primary: turku-storage 1\.0, up 1h0m0s; keys: 3 machines from turku-api, 2m0s ago; spooled reports: 2`,
		`BACKUPS RUNNING \(1 of 4 slots\)\s+SOURCE\s+ELAPSED\s+RECEIVED\s+RATE\s+FILES SENT\n`,
		`(?m)^web1 \(m-1\)\s+etc\s+1m20s\s+3\.0 MiB\s+1\.0 MiB/s\s+12$`,
		`(?m)^m-3\s+home\s+5s$`,
		`(?m)^m-2\s+restore\s+192\.0\.2\.2:5000\s+1m0s\s+restore on 127\.0\.0\.1:52001$`,
		`(?m)^default\s+/srv/turku\s+ok\s+100 GiB\s+40 GiB\s+60\.0%\s+-\s+up to 80%$`,
		`(?m)^old\s+/srv/old\s+read-only\s+10 GiB\s+1\.0 GiB\s+90\.0%\s+99\.0%\s+no$`,
		`(?m)^gone\s+/srv/gone\s+not mounted\s+error: volume gone is not mounted \(marker \.turku-storage-volume missing\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(b.String()) {
			t.Errorf("output lacks %s:\n%s", re, b.String())
		}
	}
}

// TestPrintStatusKeys: one machine is one, and keys that came from the
// built-in coordinator do not claim an API.
func TestPrintStatusKeys(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		machines int
		from     string
		builtIn  bool
		want     string
	}{
		{"built-in", 1, "api", true, "keys: 1 machine from the built-in coordinator, 1m0s ago;"},
		{"turku-api", 2, "api", false, "keys: 2 machines from turku-api, 1m0s ago;"},
		{"cache", 0, "cache", true, "keys: 0 machines from the key cache, 1m0s ago;"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &control.Status{Version: "1.0", Started: now.Add(-time.Hour), Status: monitor.Status{Now: now,
				Keys: monitor.Keys{Machines: tt.machines, Updated: now.Add(-time.Minute), From: tt.from}}}
			var b strings.Builder
			if err := printStatus(&b, st, tt.builtIn); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("got %q, want it to contain %q", strings.SplitN(b.String(), "\n", 2)[0], tt.want)
			}
		})
	}
}

// TestStatusDuringShutdown: while SIGTERM waits for a running backup,
// status still answers and shows it; the socket goes with serve.
func TestStatusDuringShutdown(t *testing.T) {
	api := apitest.New()
	t.Cleanup(api.Close)
	s := newSite(t, map[string]any{"api_url": api.BaseURL()})
	a := slowAgent(t, api, machineUUID, "web1", 192<<10, 64)
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s, "--shutdown-timeout", "1m")

	sess := a.ping(t, d, hostKeys)
	waitStatus(t, s, "the backup running", func(st *control.Status) bool { return len(st.Backups) == 1 })
	d.cancel() // SIGTERM
	d.log.WaitFor(t, "shutting down", 1, waitLong)
	if st := statusJSON(t, s); len(st.Backups) != 1 || st.Backups[0].Machine != machineUUID {
		t.Errorf("status while shutting down: backups %+v, want web1's", st.Backups)
	}
	if res := sess.Wait(t, waitLong); res.ExitCode != 0 {
		t.Errorf("backup during shutdown: ssh exit %d", res.ExitCode)
	}
	if r := d.stop(t); r.code != 0 {
		t.Errorf("serve exit %d", r.code)
	}
	r := run(t, context.Background(), nil, "-c", s.dir, "status", "--json")
	if r.code != 1 || !strings.Contains(r.stderr, "serve is not running") {
		t.Errorf("after serve stopped: exit %d, stderr %q", r.code, r.stderr)
	}
}
