package monitor

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/turku-backup/turku-storage/internal/testclock"
)

const machine = "0f3c5a5e-1b2c-4d3e-8f9a-0b1c2d3e4f50"

func TestStatusFollowsABackup(t *testing.T) {
	clk := testclock.New(time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC))
	s := New(Options{
		Now:            clk.Now,
		SpooledReports: func() int { return 2 },
		Volumes: func() []Volume {
			return []Volume{{Name: "vol1", Path: "/srv/vol1", SizeBytes: 1000, FreeBytes: 400, UsedPct: 60, MaxUsagePct: 95}}
		},
	})
	s.SetMachines(3)
	received, end := s.SessionStarted(ModeCheckin, machine, "web1", "192.0.2.7:50000", 51234, 0)
	received(10) // the rsync greeting, before the source's slot
	s.BackupPhase(machine, "web1", "etc", PhaseWaiting, nil)
	clk.Add(time.Minute)
	st := s.Status()
	if len(st.Backups) != 0 || len(st.Waiting) != 1 || st.Waiting[0].State != PhaseWaiting || st.Waiting[0].Bytes != 0 || st.Waiting[0].Files != nil {
		t.Errorf("waiting: backups %+v, waiting %+v", st.Backups, st.Waiting)
	}
	var files atomic.Int64
	s.BackupPhase(machine, "web1", "etc", PhaseRunning, files.Load)
	files.Store(7)
	received(1000)
	clk.Add(time.Minute)
	received(500)

	st = s.Status()
	seven := int64(7)
	want := []Backup{{
		Machine: machine, Unit: "web1", Source: "etc", State: PhaseRunning,
		Since: time.Date(2026, 11, 25, 3, 1, 0, 0, time.UTC), ElapsedSeconds: 60,
		Bytes: 1500, BytesPerSecond: 25, Files: &seven,
	}}
	if diff := cmp.Diff(want, st.Backups); diff != "" || len(st.Waiting) != 0 {
		t.Errorf("running backup (-want +got):\n%s\nwaiting %+v", diff, st.Waiting)
	}
	wantAgents := []Session{{Machine: machine, Unit: "web1", Remote: "192.0.2.7:50000", Mode: ModeCheckin,
		Since: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), AgentPort: 51234}}
	if diff := cmp.Diff(wantAgents, st.Agents); diff != "" || len(st.Restores) != 0 {
		t.Errorf("agents (-want +got):\n%s\nrestores %+v", diff, st.Restores)
	}
	if c := s.Counts(); c != (Counts{Machines: 3, Checkins: 1, Running: 1, Spooled: 2}) {
		t.Errorf("counts %+v", c)
	}
	if st.SpooledReports != 2 || len(st.Volumes) != 1 || st.Keys.Machines != 3 {
		t.Errorf("status %+v", st)
	}

	s.BackupFinished(machine, "web1", "etc", true, clk.Now().Add(-2*time.Minute), clk.Now(), "")
	end()
	end() // twice is harmless
	st = s.Status()
	if len(st.Backups) != 0 || len(st.Agents) != 0 {
		t.Errorf("after: %+v", st)
	}
	// The totals are /metrics' alone.
	want2 := `
# HELP turku_storage_backups_total Source backups finished, by result (success, failure).
# TYPE turku_storage_backups_total counter
turku_storage_backups_total{result="failure"} 0
turku_storage_backups_total{result="success"} 1
# HELP turku_storage_backup_received_bytes_total Bytes received from agents through checkin tunnels.
# TYPE turku_storage_backup_received_bytes_total counter
turku_storage_backup_received_bytes_total 1510
`
	if err := testutil.CollectAndCompare(s.Collector(), strings.NewReader(want2),
		"turku_storage_backups_total", "turku_storage_backup_received_bytes_total"); err != nil {
		t.Error(err)
	}
}

func TestCollector(t *testing.T) {
	s := New(Options{})
	end := time.Unix(1764039600, 0)
	s.SeedSource(machine, "web1", "etc", end.Add(-time.Hour))
	s.SeedSource(machine, "web1", "var", end.Add(-48*time.Hour))
	s.BackupFinished(machine, "web1", "etc", true, end.Add(-90*time.Second), end, "")
	s.BackupFinished(machine, "web1", "var", false, end.Add(-5*time.Second), end, "rsync exited with return code 23\nsome line\n")
	// An older seed (read from disk after the backup) does not win.
	s.SeedSource(machine, "web1", "etc", end.Add(-time.Hour))
	s.AuthFailed()
	s.ConnectionDropped("max_startups")
	s.ConnectionDropped("max_startups")

	want := `
# HELP turku_storage_backups_total Source backups finished, by result (success, failure).
# TYPE turku_storage_backups_total counter
turku_storage_backups_total{result="failure"} 1
turku_storage_backups_total{result="success"} 1
# HELP turku_storage_source_last_success_timestamp_seconds When the source's last successful backup finished (from the newest snapshot on disk at start).
# TYPE turku_storage_source_last_success_timestamp_seconds gauge
turku_storage_source_last_success_timestamp_seconds{machine="` + machine + `",source="etc",unit="web1"} 1.7640396e+09
turku_storage_source_last_success_timestamp_seconds{machine="` + machine + `",source="var",unit="web1"} 1.7638668e+09
# HELP turku_storage_source_last_attempt_timestamp_seconds When the source's last backup attempt ended, successful or not.
# TYPE turku_storage_source_last_attempt_timestamp_seconds gauge
turku_storage_source_last_attempt_timestamp_seconds{machine="` + machine + `",source="etc",unit="web1"} 1.7640396e+09
turku_storage_source_last_attempt_timestamp_seconds{machine="` + machine + `",source="var",unit="web1"} 1.7640396e+09
# HELP turku_storage_ssh_connections_dropped_total SSH connections dropped by the server, by reason.
# TYPE turku_storage_ssh_connections_dropped_total counter
turku_storage_ssh_connections_dropped_total{reason="max_startups"} 2
# HELP turku_storage_ssh_auth_failures_total Failed SSH authentication attempts.
# TYPE turku_storage_ssh_auth_failures_total counter
turku_storage_ssh_auth_failures_total 1
# HELP turku_storage_backup_duration_seconds Duration of source backups, from begin to report.
# TYPE turku_storage_backup_duration_seconds histogram
turku_storage_backup_duration_seconds_bucket{le="10"} 1
turku_storage_backup_duration_seconds_bucket{le="30"} 1
turku_storage_backup_duration_seconds_bucket{le="60"} 1
turku_storage_backup_duration_seconds_bucket{le="300"} 2
turku_storage_backup_duration_seconds_bucket{le="900"} 2
turku_storage_backup_duration_seconds_bucket{le="1800"} 2
turku_storage_backup_duration_seconds_bucket{le="3600"} 2
turku_storage_backup_duration_seconds_bucket{le="7200"} 2
turku_storage_backup_duration_seconds_bucket{le="14400"} 2
turku_storage_backup_duration_seconds_bucket{le="28800"} 2
turku_storage_backup_duration_seconds_bucket{le="86400"} 2
turku_storage_backup_duration_seconds_bucket{le="+Inf"} 2
turku_storage_backup_duration_seconds_sum 95
turku_storage_backup_duration_seconds_count 2
`
	if err := testutil.CollectAndCompare(s.Collector(), strings.NewReader(want),
		"turku_storage_backups_total", "turku_storage_source_last_success_timestamp_seconds",
		"turku_storage_source_last_attempt_timestamp_seconds", "turku_storage_ssh_connections_dropped_total",
		"turku_storage_ssh_auth_failures_total", "turku_storage_backup_duration_seconds"); err != nil {
		t.Error(err)
	}
	// Every metric passes the registry's consistency checks.
	if problems, err := testutil.CollectAndLint(s.Collector()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// The methods of a nil *State do nothing (serve without monitoring).
func TestNilState(t *testing.T) {
	var s *State
	s.AuthFailed()
	s.ConnectionDropped("x")
	s.BackupPhase(machine, "u", "etc", PhaseRunning, nil)
	s.BackupFinished(machine, "u", "etc", true, time.Now(), time.Now(), "")
	s.SeedSource(machine, "u", "etc", time.Now())
	s.SetMachines(1)
	s.KeyRefreshed(time.Now())
	s.KeysFromCache(time.Now())
	s.ConfigLoaded(true, time.Now())
	received, end := s.SessionStarted(ModeCheckin, machine, "u", "r", 1, 0)
	received(1)
	end()
}

// RestoreSession finds a machine's newest restore session with both its
// ports, and its channel wakes a waiter when any session starts or ends.
func TestRestoreSession(t *testing.T) {
	clk := testclock.New(time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC))
	s := New(Options{Now: clk.Now})
	got, changed := s.RestoreSession(machine)
	if got != nil {
		t.Fatalf("no session yet, got %+v", got)
	}
	// A checkin of the machine is no restore session, but it is a change.
	_, endCheckin := s.SessionStarted(ModeCheckin, machine, "web1", "r", 51000, 0)
	defer endCheckin()
	select {
	case <-changed:
	default:
		t.Fatal("a session started and the channel stayed open")
	}
	got, changed = s.RestoreSession(machine)
	if got != nil {
		t.Fatalf("checkin taken for a restore: %+v", got)
	}
	_, endOther := s.SessionStarted(ModeRestore, "other", "db1", "r", 52000, 52001)
	defer endOther()
	<-changed
	_, endOld := s.SessionStarted(ModeRestore, machine, "web1", "r", 50000, 50001)
	clk.Add(time.Second)
	_, endNew := s.SessionStarted(ModeRestore, machine, "web1", "r", 50000, 50002)
	got, changed = s.RestoreSession(machine)
	if got == nil || got.Mode != ModeRestore || got.AgentPort != 50000 || got.RestorePort != 50002 {
		t.Errorf("restore session %+v, want the newest one, on 50002", got)
	}
	endNew()
	<-changed
	if got, _ := s.RestoreSession(machine); got == nil || got.RestorePort != 50001 {
		t.Errorf("after the newest ended: %+v, want the one on 50001", got)
	}
	endOld()

	if k := s.Status().Keys; k.From != "" || !k.Updated.IsZero() {
		t.Errorf("keys before any load: %+v", k)
	}
	cached := clk.Now().Add(-time.Hour)
	s.KeysFromCache(cached)
	if k := s.Status().Keys; k.From != KeysFromCache || !k.Updated.Equal(cached) || !k.Refreshed.IsZero() {
		t.Errorf("keys from the cache: %+v", k)
	}
	s.KeyRefreshed(clk.Now())
	if k := s.Status().Keys; k.From != KeysFromAPI || !k.Updated.Equal(clk.Now()) || !k.Refreshed.Equal(clk.Now()) {
		t.Errorf("keys from the API: %+v", k)
	}
}

// The reload series: a refused reload turns the flag to 0 and keeps the
// time of the last success; a good one sets both.
func TestConfigLoaded(t *testing.T) {
	s := New(Options{})
	series := func(ok, at string) string {
		return `
# HELP turku_storage_config_last_reload_successful Whether the last configuration load, at start or on SIGHUP, succeeded (1) or was refused (0).
# TYPE turku_storage_config_last_reload_successful gauge
turku_storage_config_last_reload_successful ` + ok + `
# HELP turku_storage_config_last_reload_success_timestamp_seconds When the configuration was last loaded successfully, at start or on SIGHUP (0: never).
# TYPE turku_storage_config_last_reload_success_timestamp_seconds gauge
turku_storage_config_last_reload_success_timestamp_seconds ` + at + `
`
	}
	start := time.Unix(1764039600, 0)
	for _, step := range []struct {
		name    string
		ok      bool
		at      time.Time
		wantOK  string
		wantAt  string
		skipSet bool
	}{
		{name: "never loaded", skipSet: true, wantOK: "0", wantAt: "0"},
		{name: "start", ok: true, at: start, wantOK: "1", wantAt: "1.7640396e+09"},
		{name: "refused reload", ok: false, at: start.Add(time.Hour), wantOK: "0", wantAt: "1.7640396e+09"},
		{name: "good reload", ok: true, at: start.Add(2 * time.Hour), wantOK: "1", wantAt: "1.7640468e+09"},
	} {
		if !step.skipSet {
			s.ConfigLoaded(step.ok, step.at)
		}
		if err := testutil.CollectAndCompare(s.Collector(), strings.NewReader(series(step.wantOK, step.wantAt)),
			"turku_storage_config_last_reload_successful", "turku_storage_config_last_reload_success_timestamp_seconds"); err != nil {
			t.Errorf("%s: %v", step.name, err)
		}
	}
}
