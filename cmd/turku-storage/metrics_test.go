package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// scrape fetches /metrics from addr and parses the text format.
func scrape(t *testing.T, addr net.Addr) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample returns the value of the sample of name whose labels include
// labels (name=value pairs); ok is false if there is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func mustSample(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := sample(fams, name, labels...)
	if !ok {
		t.Fatalf("/metrics has no %s%v", name, labels)
	}
	return v
}

// A real backup through the real OpenSSH client and rsync daemon moves the
// counters and the source's last-success time; a restarted serve reads
// that time back from the backup history on disk.
func TestServeMetricsAfterBackup(t *testing.T) {
	api, s := newAPISite(t, map[string]any{"metrics_listen": "127.0.0.1:0"})
	raw := make([]byte, 48<<10)
	rand.Read(raw)
	data := base64.StdEncoding.EncodeToString(raw) // 64 KiB that -z cannot shrink below 48
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"data": data})
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s)
	if d.metrics == nil {
		t.Fatal("metrics_listen set but no metrics listener")
	}

	before := scrape(t, d.metrics)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "turku_storage_volume_size_bytes", "turku_storage_reports_spooled"} {
		mustSample(t, before, name)
	}
	if got := mustSample(t, before, "turku_storage_backups_total", "result", "success"); got != 0 {
		t.Errorf("successes before any backup: %v", got)
	}
	if got := mustSample(t, before, "turku_storage_machines"); got != 1 {
		t.Errorf("turku_storage_machines %v, want 1 (from the key cache)", got)
	}
	if _, ok := sample(before, "turku_storage_source_last_success_timestamp_seconds", "machine", machineUUID); ok {
		t.Error("last success known before any backup")
	}

	started := time.Now()
	if res := a.ping(t, d, hostKeys).Wait(t, waitLong); res.ExitCode != 0 {
		t.Fatalf("backup: ssh exit %d", res.ExitCode)
	}
	after := scrape(t, d.metrics)
	if got := mustSample(t, after, "turku_storage_backups_total", "result", "success"); got != 1 {
		t.Errorf("successes %v, want 1", got)
	}
	if got := mustSample(t, after, "turku_storage_backups_total", "result", "failure"); got != 0 {
		t.Errorf("failures %v, want 0", got)
	}
	if got := mustSample(t, after, "turku_storage_backup_duration_seconds"); got != 1 {
		t.Errorf("duration histogram count %v, want 1", got)
	}
	if got := mustSample(t, after, "turku_storage_backup_received_bytes_total"); got < float64(len(raw)) {
		t.Errorf("received %v bytes through the tunnel, want some of the %d", got, len(data))
	}
	success := mustSample(t, after, "turku_storage_source_last_success_timestamp_seconds", "machine", machineUUID, "unit", "web1", "source", "etc")
	attempt := mustSample(t, after, "turku_storage_source_last_attempt_timestamp_seconds", "machine", machineUUID, "unit", "web1", "source", "etc")
	if success < float64(started.Unix()) || success != attempt {
		t.Errorf("last success %v, attempt %v: want both the backup's end, after %d", success, attempt, started.Unix())
	}
	if got := mustSample(t, after, "turku_storage_sessions", "mode", "checkin"); got != 0 {
		t.Errorf("checkin sessions after the session ended: %v", got)
	}

	// A failed login counts.
	stranger := &agent{uuid: "x", key: agenttest.NewKey(t), rsyncd: a.rsyncd}
	if res := stranger.ping(t, d, hostKeys).Wait(t, waitLong); res.ExitCode != 255 {
		t.Fatalf("unknown key: exit %d", res.ExitCode)
	}
	if got := mustSample(t, scrape(t, d.metrics), "turku_storage_ssh_auth_failures_total"); got < 1 {
		t.Errorf("auth failures %v after an unknown key", got)
	}
	d.stop(t)

	// Restarted, serve knows the last success from the snapshot on disk.
	mdir := filepath.Join(s.volume, machineUUID)
	snaps, err := backup.ListSnapshots(mdir, "etc", time.UTC)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v, %v", snaps, err)
	}
	d2 := startServe(t, s)
	d2.log.WaitFor(t, "read the snapshots and backup history on disk", 1, waitLong)
	got := mustSample(t, scrape(t, d2.metrics), "turku_storage_source_last_success_timestamp_seconds", "machine", machineUUID, "unit", "web1", "source", "etc")
	// The backup history keeps the attempt's end, as reported before the
	// restart; it is no earlier than the snapshot's sync_finish.
	if math.Abs(got-success) > 1e-3 || got < float64(snaps[0].SyncFinish.UnixNano())/1e9 {
		t.Errorf("after restart: last success %v, want %v as before the restart (snapshot finished %v)", got, success, snaps[0].SyncFinish)
	}
}

// A volume over max_usage_pct: the backup fails at once, nothing is
// written, the agent is told, and /metrics shows the failure and the
// guard's threshold.
func TestServeDiskGuard(t *testing.T) {
	// Whatever the test filesystem's fill, 1% is below it.
	api, s := newAPISite(t, map[string]any{"metrics_listen": "127.0.0.1:0", "max_usage_pct": 1})
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"f": "x"})
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	// An existing machine (placement alone would already refuse a new one).
	mdir := filepath.Join(s.volume, machineUUID)
	if err := os.MkdirAll(filepath.Join(s.varDir, "machines"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(mdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mdir, filepath.Join(s.varDir, "machines", machineUUID)); err != nil {
		t.Fatal(err)
	}
	d := startServe(t, s)
	res := a.ping(t, d, hostKeys).Wait(t, waitLong)
	if res.ExitCode == 0 {
		t.Fatal("backup into a full volume succeeded")
	}
	if !strings.Contains(res.Stderr, "Source etc: storage volume default is ") || !strings.Contains(res.Stderr, "above its limit of 1% (max_usage_pct): no backup started") {
		t.Errorf("agent not told about the full volume:\n%s", res.Stderr)
	}
	d.log.WaitFor(t, `msg="report delivered"`, 1, waitLong) // in the background
	reports := api.Reports()
	if len(reports) != 1 || reports[0].Success || !strings.Contains(reports[0].Summary, "volume default is ") {
		t.Fatalf("reports %+v, want one failure naming the volume", reports)
	}
	if entries, err := os.ReadDir(mdir); err != nil || len(entries) != 0 {
		t.Errorf("machine directory: %v %v, want it untouched and empty", entries, err)
	}
	fams := scrape(t, d.metrics)
	if got := mustSample(t, fams, "turku_storage_backups_total", "result", "failure"); got != 1 {
		t.Errorf("failures %v, want 1", got)
	}
	if got := mustSample(t, fams, "turku_storage_volume_max_usage_ratio", "volume", "default"); got != 0.01 {
		t.Errorf("guard ratio %v, want 0.01", got)
	}

	// check says CRITICAL and names the volume.
	r := run(t, context.Background(), nil, "-c", s.dir, "check", "--max-age", "48h")
	if r.code != 2 || !strings.Contains(r.stdout, "volume default") {
		t.Errorf("check: exit %d, stdout %q; want 2 naming volume default", r.code, r.stdout)
	}
}

// readDatagrams collects what serve sends to NOTIFY_SOCKET.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	out := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			out <- string(buf[:n])
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return out
}

// waitNotify returns the next datagram containing want; earlier ones are
// returned too, in order.
func waitNotify(t *testing.T, ch <-chan string, want string) (seen []string) {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case m := <-ch:
			seen = append(seen, m)
			if strings.Contains(m, want) {
				return seen
			}
		case <-timeout:
			t.Fatalf("no %q from serve; got %q", want, seen)
		}
	}
}

func TestServeSystemdNotify(t *testing.T) {
	notes := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "200000") // 0.2 s: beats every 0.1 s
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	api, s := newAPISite(t, nil)
	api.AddStorage("primary", "S")
	// No key cache: READY=1 must wait for the first refresh.
	d := startServe(t, s)

	seen := waitNotify(t, notes, "READY=1")
	ready := seen[len(seen)-1]
	if len(api.Requests("storage_update_config")) == 0 {
		t.Error("READY=1 before the keys were loaded from the API")
	}
	if !strings.Contains(ready, "STATUS=0 machines;") {
		t.Errorf("READY datagram %q lacks the STATUS line", ready)
	}
	// The SSH port accepts and speaks SSH.
	c, err := net.Dial("tcp", d.ssh.String())
	if err != nil {
		t.Fatalf("SSH port after READY=1: %v", err)
	}
	banner := make([]byte, len("SSH-2.0-TurkuStorage"))
	if _, err := io.ReadFull(c, banner); err != nil || string(banner) != "SSH-2.0-TurkuStorage" {
		t.Errorf("banner %q, %v", banner, err)
	}
	c.Close()

	waitNotify(t, notes, "WATCHDOG=1")

	d.hup <- struct{}{}
	seen = waitNotify(t, notes, "RELOADING=1")
	if !strings.Contains(seen[len(seen)-1], "MONOTONIC_USEC=") {
		t.Errorf("RELOADING datagram %q lacks MONOTONIC_USEC", seen[len(seen)-1])
	}
	waitNotify(t, notes, "READY=1")

	d.stop(t)
	waitNotify(t, notes, "STOPPING=1")
}

// During a backup slowed by the agent's --bwlimit, /metrics shows the
// checkin session, the running backup and the received bytes growing as
// they flow through the tunnel.
func TestServeMetricsDuringBackup(t *testing.T) {
	api, s := newAPISite(t, map[string]any{"metrics_listen": "127.0.0.1:0"})
	raw := make([]byte, 1<<20)
	rand.Read(raw)
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"big": string(raw)})
	// 20 KiB/s: the pull runs for most of a minute.
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc", Bwlimit: "20"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s, "--shutdown-timeout", "0s")

	sess := a.ping(t, d, hostKeys)
	sess.Stderr().WaitFor(t, "Begin: web1 etc", 1, waitLong)
	var first float64
	deadline := time.Now().Add(waitLong)
	for {
		fams := scrape(t, d.metrics)
		got := mustSample(t, fams, "turku_storage_backup_received_bytes_total")
		running, _ := sample(fams, "turku_storage_backups_running")
		switch {
		case first == 0 && got > 0 && running == 1:
			first = got
			if n := mustSample(t, fams, "turku_storage_sessions", "mode", "checkin"); n != 1 {
				t.Errorf("checkin sessions %v, want 1", n)
			}
		case first > 0 && got > first:
			d.stop(t) // cancels the transfer; the test is done
			sess.Wait(t, waitLong)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("received bytes did not grow during the backup (first %v, now %v, running %v)", first, got, running)
		}
		time.Sleep(50 * time.Millisecond) // polling /metrics, as a scraper does
	}
}
