package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
	"github.com/turku-backup/turku-storage/control"
	"github.com/turku-backup/turku-storage/internal/agenttest"
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

// TestStatusDuringBackup: while an agent's daemon sends slowly (its
// --bwlimit), status shows the agent, the running backup and its bytes
// growing; afterwards neither.
func TestStatusDuringBackup(t *testing.T) {
	api := apitest.New()
	t.Cleanup(api.Close)
	s := newSite(t, map[string]any{"api_url": api.BaseURL()})
	a := &agent{uuid: machineUUID, key: agenttest.NewKey(t), data: t.TempDir()}
	big := make([]byte, 384<<10) // random: --compress gains nothing
	rand.Read(big)
	agenttest.WriteTree(t, a.data, map[string]string{"big.bin": string(big), "small": "x\n"})
	api.AddMachine("primary", machineUUID, apiclient.MachineInfo{UnitName: "web1", SSHPublicKey: a.key.Authorized})
	// 64 KiB/s from the agent's daemon: about six seconds for the pull.
	a.rsyncd = agenttest.StartRsyncd(t, "127.0.0.1", []agenttest.Module{{Name: "etc", Path: a.data, User: "etc-user", Password: "etc-pass"}}, "--bwlimit=64")
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s)

	st := statusJSON(t, s)
	if len(st.Agents)+len(st.Backups) != 0 || st.Keys.Machines != 1 || st.Keys.From != "cache" {
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
	if b.Machine != machineUUID || b.Unit != "web1" || b.Source != "etc" || b.State != control.StateRunning {
		t.Errorf("running backup %+v", b)
	}
	if len(first.Agents) != 1 || first.Agents[0].Mode != control.ModeCheckin || first.Agents[0].Unit != "web1" ||
		first.Agents[0].AgentPort != a.rsyncd.Port || !strings.HasPrefix(first.Agents[0].Remote, "127.0.0.1:") {
		t.Errorf("agents %+v, want web1 checking in from 127.0.0.1 with port %d", first.Agents, a.rsyncd.Port)
	}
	later := waitStatus(t, s, "the backup's bytes growing", func(st *control.Status) bool {
		return len(st.Backups) == 1 && st.Backups[0].Bytes > b.Bytes
	})
	if got := later.Backups[0]; got.ElapsedSeconds < b.ElapsedSeconds || got.BytesPerSecond <= 0 || got.Bytes > int64(len(big))+64<<10 {
		t.Errorf("later sample %+v after %+v", got, b)
	}

	if res := sess.Wait(t, waitLong); res.ExitCode != 0 {
		t.Fatalf("backup: ssh exit %d", res.ExitCode)
	}
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
