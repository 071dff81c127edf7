package control

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/monitor"
)

func TestWriteText(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	files := int64(12)
	st := &Status{Storage: "primary", Version: "1.0", Started: now.Add(-time.Hour), MaxConcurrentBackups: 4, Status: monitor.Status{
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
	if err := st.WriteText(&b, false); err != nil {
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

// TestWriteTextKeys: one machine is one, and keys that came from the
// built-in coordinator do not claim an API.
func TestWriteTextKeys(t *testing.T) {
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
			st := &Status{Version: "1.0", Started: now.Add(-time.Hour), Status: monitor.Status{Now: now,
				Keys: monitor.Keys{Machines: tt.machines, Updated: now.Add(-time.Minute), From: tt.from}}}
			var b strings.Builder
			if err := st.WriteText(&b, tt.builtIn); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("got %q, want it to contain %q", strings.SplitN(b.String(), "\n", 2)[0], tt.want)
			}
		})
	}
}
