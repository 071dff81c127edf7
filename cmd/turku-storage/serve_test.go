package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/daemon"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

const (
	machineUUID = "9bef0a75-5a9b-43f7-a66a-7e8c6d7ad91d"
	waitLong    = 60 * time.Second
)

// daemonUnderTest is `turku-storage serve` running in-process.
type daemonUnderTest struct {
	ssh, coord net.Addr
	metrics    net.Addr          // with metrics_listen set
	web        net.Addr          // with web_listen set
	log        *agenttest.Output // the daemon's own log (log_file unset: stderr)
	cancel     context.CancelFunc
	// hup and force stand in for the process's signals: a SIGHUP, and the
	// second SIGTERM of an impatient operator.
	hup      chan struct{}
	force    context.CancelCauseFunc
	done     chan runResult
	stopOnce sync.Once
	result   runResult
}

// startServe runs serve until the test ends (or stop is called).
func startServe(t *testing.T, s *site, args ...string) *daemonUnderTest {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemonUnderTest{log: &agenttest.Output{}, cancel: cancel, done: make(chan runResult, 1), hup: make(chan struct{}, 1)}
	force, forceCancel := context.WithCancelCause(context.Background())
	d.force = forceCancel
	ready := make(chan struct{})
	g := &globals{stdout: d.log, stderr: d.log, signals: daemon.Signals{Hup: d.hup, Force: force}, onListen: func(ssh, coord net.Addr) {
		d.ssh, d.coord = ssh, coord
		close(ready)
	}}
	go func() {
		g.onMetrics = func(a net.Addr) { d.metrics = a }
		g.onWeb = func(a net.Addr) { d.web = a }
		d.done <- runResult{code: execute(ctx, g, nil, append([]string{"-c", s.dir, "serve"}, args...)...)}
	}()
	select {
	case <-ready:
	case r := <-d.done:
		t.Fatalf("serve exited %d before listening:\n%s", r.code, d.log.String())
	}
	t.Cleanup(func() {
		d.stop(t)
		t.Logf("serve log:\n%s", d.log.String())
	})
	return d
}

// stop cancels serve as SIGTERM does and waits for it to return.
func (d *daemonUnderTest) stop(t *testing.T) runResult {
	t.Helper()
	d.stopOnce.Do(func() {
		d.cancel()
		select {
		case d.result = <-d.done:
		case <-time.After(waitLong):
			t.Fatal("serve did not stop")
		}
	})
	return d.result
}

// agent is one machine with its key, data and rsync daemon.
type agent struct {
	uuid   string
	key    agenttest.Key
	data   string
	rsyncd *agenttest.Daemon
}

func newAgent(t *testing.T, api *apitest.Server, uuid, unit string, files map[string]string) *agent {
	t.Helper()
	a := &agent{uuid: uuid, key: agenttest.NewKey(t), data: t.TempDir()}
	agenttest.WriteTree(t, a.data, files)
	api.AddMachine("primary", uuid, apiclient.MachineInfo{UnitName: unit, SSHPublicKey: a.key.Authorized})
	a.rsyncd = agenttest.StartRsyncd(t, "127.0.0.1", []agenttest.Module{{Name: "etc", Path: a.data, User: "etc-user", Password: "etc-pass"}})
	return a
}

// ping runs the agent's ssh exactly as turku-agent does.
func (a *agent) ping(t *testing.T, d *daemonUnderTest, hostKeys []string) *agenttest.Session {
	t.Helper()
	return a.pingWithPassword(t, d, hostKeys, "etc-pass")
}

// pingWithPassword is ping with password as the agent's rsync secret for
// etc: a wrong one makes the agent's daemon refuse every pull.
func (a *agent) pingWithPassword(t *testing.T, d *daemonUnderTest, hostKeys []string, password string) *agenttest.Session {
	t.Helper()
	return agenttest.Ping{
		Host: "127.0.0.1", Port: d.ssh.(*net.TCPAddr).Port, User: "turku-ping",
		Key: a.key, HostKeys: hostKeys, ForwardPort: a.rsyncd.Port,
		Request: map[string]any{
			"verbose": true, "action": "checkin", "port": a.rsyncd.Port,
			"sources": map[string]any{"etc": map[string]string{"username": "etc-user", "password": password}},
		},
	}.Start(t)
}

// registered runs update-config against api and returns the host keys the
// storage unit advertised — what the agent will put in known_hosts.
func registered(t *testing.T, api *apitest.Server, s *site) []string {
	t.Helper()
	api.AddStorage("primary", "S")
	if r := run(t, context.Background(), nil, "-c", s.dir, "update-config"); r.code != 0 {
		t.Fatalf("update-config: exit %d", r.code)
	}
	reqs := api.Requests("storage_update_config")
	var keys []string
	for _, k := range reqs[len(reqs)-1].Body["storage"].(map[string]any)["ssh_ping_host_keys"].([]any) {
		keys = append(keys, k.(string))
	}
	return keys
}

func TestServeBackupThroughTunnel(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, nil)
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"hosts": "127.0.0.1 localhost\n", "sub/app.conf": "x=1\n"})
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc", Retention: "last 5 snapshots", Exclude: []string{"*.tmp"}})
	os.WriteFile(filepath.Join(a.data, "junk.tmp"), []byte("excluded"), 0o644)
	hostKeys := registered(t, api, s)
	d := startServe(t, s)

	res := a.ping(t, d, hostKeys).Wait(t, waitLong)
	if res.ExitCode != 0 {
		t.Fatalf("first backup: ssh exit %d", res.ExitCode)
	}
	// The report is delivered in the background once the snapshot is safe.
	d.log.WaitFor(t, `msg="report delivered"`, 1, waitLong)
	for _, want := range []string{"primary] INFO: Sources to back up: etc", "INFO: Begin: web1 etc", "INFO: End: web1 etc", "INFO: Done"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("agent log lacks %q", want)
		}
	}
	machineDir := filepath.Join(s.varDir, "machines", machineUUID)
	if target, err := os.Readlink(machineDir); err != nil || target != filepath.Join(s.volume, machineUUID) {
		t.Fatalf("machines/%s -> %q (%v), want the volume's machine dir", machineUUID, target, err)
	}
	reports := api.Reports()
	if len(reports) != 1 || !reports[0].Success || reports[0].Snapshot == "" {
		t.Fatalf("reports %+v, want one success with a snapshot", reports)
	}
	first := filepath.Join(machineDir, "etc.snapshots", reports[0].Snapshot)
	got, err := os.ReadFile(filepath.Join(first, "sub", "app.conf"))
	if err != nil || string(got) != "x=1\n" {
		t.Fatalf("snapshot content %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(first, "junk.tmp")); !os.IsNotExist(err) {
		t.Errorf("excluded file was copied: %v", err)
	}
	if latest, _ := os.Readlink(filepath.Join(machineDir, "etc.snapshots", "latest")); latest != reports[0].Snapshot {
		t.Errorf("latest -> %q, want %q", latest, reports[0].Snapshot)
	}
	if api.Due(machineUUID, "etc") {
		t.Error("source still due after success")
	}

	// Second run: unchanged files are hard links into the first snapshot.
	os.WriteFile(filepath.Join(a.data, "hosts"), []byte("changed\n"), 0o644)
	api.SetDue(machineUUID, "etc", true)
	res = a.ping(t, d, hostKeys).Wait(t, waitLong)
	if res.ExitCode != 0 {
		t.Fatalf("second backup: ssh exit %d", res.ExitCode)
	}
	d.log.WaitFor(t, `msg="report delivered"`, 2, waitLong)
	reports = api.Reports()
	if len(reports) != 2 || !reports[1].Success || !strings.Contains(reports[1].Summary, "Base snapshot: "+reports[0].Snapshot) {
		t.Fatalf("second report %+v", reports[len(reports)-1])
	}
	second := filepath.Join(machineDir, "etc.snapshots", reports[1].Snapshot)
	if agenttest.Inode(t, filepath.Join(first, "sub", "app.conf")) != agenttest.Inode(t, filepath.Join(second, "sub", "app.conf")) {
		t.Error("unchanged file not hard-linked across snapshots")
	}
	if agenttest.Inode(t, filepath.Join(first, "hosts")) == agenttest.Inode(t, filepath.Join(second, "hosts")) {
		t.Error("changed file shares the old inode")
	}
	if got, _ := os.ReadFile(filepath.Join(second, "hosts")); string(got) != "changed\n" {
		t.Errorf("second snapshot hosts = %q", got)
	}

	// `snapshots` finds the machine by its bare unit name through the key
	// cache, and lists both snapshots, the second as latest.
	r := run(t, context.Background(), nil, "-c", s.dir, "snapshots", "web1", "etc", "--json")
	var listed map[string][]backup.SnapshotEntry
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed["etc"]) != 2 {
		t.Fatalf("snapshots web1 etc: exit %d, %v, %q", r.code, err, r.stdout)
	}
	if got := listed["etc"][1]; got.Name != reports[1].Snapshot || !got.Latest || got.Base != reports[0].Snapshot {
		t.Errorf("newest listed %+v, want %s as latest with base %s", got, reports[1].Snapshot, reports[0].Snapshot)
	}
	// Its figures: only the changed hosts was sent; the snapshots hold
	// both versions of hosts and app.conf once.
	if st := listed["etc"][1].TransferStats; st == nil || st.TransferredSize != int64(len("changed\n")) || st.TotalSize != int64(len("changed\nx=1\n")) || listed["etc"][1].DurationSeconds == nil {
		t.Errorf("newest listed figures %+v, want %d bytes sent of %d", listed["etc"][1], len("changed\n"), len("changed\nx=1\n"))
	}
	r = run(t, context.Background(), nil, "-c", s.dir, "snapshots", "--json")
	var overview []backup.MachineOverview
	if err := json.Unmarshal([]byte(r.stdout), &overview); err != nil || len(overview) != 1 {
		t.Fatalf("snapshots --json: exit %d, %v, %q", r.code, err, r.stdout)
	}
	if want := int64(len("127.0.0.1 localhost\nchanged\nx=1\n")); !overview[0].UsageKnown || overview[0].UsageBytes != want {
		t.Errorf("machine usage %d (known %v), want %d", overview[0].UsageBytes, overview[0].UsageKnown, want)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "snapshots", "db9"); r.code != 1 || !strings.Contains(r.stderr, `no machine has unit name "db9"`) {
		t.Errorf("unknown unit: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "snapshots", "web1", "nosuchsource"); r.code != 1 || !strings.Contains(r.stderr, `machine web1: no source "nosuchsource" on this storage unit (sources: etc)`) || r.stdout != "" {
		t.Errorf("unknown source: exit %d, stdout %q, stderr %q; want an error naming the sources", r.code, r.stdout, r.stderr)
	}

	// Nothing due: the session ends at once with exit 0.
	res = a.ping(t, d, hostKeys).Wait(t, waitLong)
	if res.ExitCode != 0 || !strings.Contains(res.Stderr, "No sources to back up now") {
		t.Errorf("nothing due: exit %d", res.ExitCode)
	}

	// Once stopped, serve has kept the agent's address as a known source
	// for the next start (admission's reserved share after a restart).
	if r := d.stop(t); r.code != 0 {
		t.Fatalf("serve exit %d", r.code)
	}
	known, err := os.ReadFile(filepath.Join(s.varDir, "history", "known-sources"))
	if err != nil || !strings.Contains(string(known), "\n127.0.0.1/32 ") {
		t.Errorf("known-sources after stop: %v, %q; want 127.0.0.1/32 listed", err, known)
	}
}

func TestServeRefusesUnknownAndRevokedKeys(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, nil)
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"f": "1"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s)

	stranger := &agent{uuid: "x", key: agenttest.NewKey(t), rsyncd: a.rsyncd}
	res := stranger.ping(t, d, hostKeys).Wait(t, waitLong)
	if res.ExitCode != 255 || !strings.Contains(res.Stderr, "Permission denied") {
		t.Fatalf("unknown key: exit %d, want 255 Permission denied", res.ExitCode)
	}
	if res := a.ping(t, d, hostKeys).Wait(t, waitLong); res.ExitCode != 0 {
		t.Fatalf("known key: exit %d", res.ExitCode)
	}

	// Revoke in the API, then SIGHUP: the next refresh drops the key. A
	// refresh already under way (the one at start) may still answer with
	// the machine, so wait for the one that does not.
	api.RemoveMachine(machineUUID)
	d.hup <- struct{}{}
	d.log.WaitFor(t, `msg="refreshed machines from API" machines=0`, 1, waitLong)
	res = a.ping(t, d, hostKeys).Wait(t, waitLong)
	if res.ExitCode != 255 || !strings.Contains(res.Stderr, "Permission denied") {
		t.Fatalf("revoked key: exit %d, want 255 Permission denied", res.ExitCode)
	}
}

func TestServeShutdownCancelsBackup(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, nil)
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"big": big})
	// 10 KiB/s: the pull is still running when serve is told to stop.
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc", Bwlimit: "10"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s, "--shutdown-timeout", "0s")

	sess := a.ping(t, d, hostKeys)
	sess.Stderr().WaitFor(t, "Begin: web1 etc", 1, waitLong)
	r := d.stop(t)
	if r.code != 0 {
		t.Errorf("serve exit %d after SIGTERM, want 0", r.code)
	}
	res := sess.Wait(t, waitLong)
	if res.ExitCode == 0 {
		t.Error("agent session reported success for a cancelled backup")
	}
	if !strings.Contains(res.Stderr, "ERROR: Session ended: shutdown deadline passed") {
		t.Errorf("agent not told the deadline passed: %q", res.Stderr)
	}
	reports := api.Reports()
	if len(reports) != 1 || reports[0].Success || reports[0].Snapshot != "" {
		t.Fatalf("reports %+v, want one failure without snapshot", reports)
	}
	machineDir := filepath.Join(s.volume, machineUUID)
	if _, err := os.Stat(filepath.Join(machineDir, "etc")); err != nil {
		t.Errorf("working tree not kept for the next run: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(machineDir, "etc.snapshots"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "etc_") {
			t.Errorf("snapshot %s created by a cancelled backup", e.Name())
		}
	}
}
