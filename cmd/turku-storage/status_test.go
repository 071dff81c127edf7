package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
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
	var out, errOut agenttest.Output
	if code := execute(context.Background(), &globals{stdout: &out, stderr: &errOut}, nil, "-c", s.dir, "status", "--json"); code != 0 {
		t.Fatalf("status --json: exit %d\n%s", code, errOut.String())
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
	api, s := newAPISite(t, map[string]any{"max_concurrent_backups": 1})
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
	api, s := newAPISite(t, nil)
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

// TestStatusDuringShutdown: while SIGTERM waits for a running backup,
// status still answers and shows it; the socket goes with serve.
func TestStatusDuringShutdown(t *testing.T) {
	api, s := newAPISite(t, nil)
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
