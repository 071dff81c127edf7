package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/history"
)

const (
	uuidOld = "11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	uuidNew = "22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
)

// addSnapshot makes a snapshot of source on machine uuid (placing it on
// the site's volume, with name link "prod-www-<unit>") that finished age
// ago, as the backup engine names them. It returns the snapshot's name.
func addSnapshot(t *testing.T, s *site, uuid, unit, source string, age time.Duration) string {
	t.Helper()
	mdir := filepath.Join(s.volume, uuid)
	machines := filepath.Join(s.varDir, "machines")
	if err := os.MkdirAll(machines, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(machines, uuid)); os.IsNotExist(err) {
		for _, link := range [][2]string{{mdir, uuid}, {uuid, "prod-www-" + unit}} {
			if err := os.Symlink(link[0], filepath.Join(machines, link[1])); err != nil {
				t.Fatal(err)
			}
		}
	}
	name := source + "_" + time.Now().Add(-age).UTC().Format("20060102-150405") + "_ab12"
	snapDir := filepath.Join(mdir, source+".snapshots")
	if err := os.MkdirAll(filepath.Join(snapDir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(snapDir, "latest"))
	if err := os.Symlink(name, filepath.Join(snapDir, "latest")); err != nil {
		t.Fatal(err)
	}
	return name
}

// addAttempt records an attempt of source on machine uuid that ended ago
// and ran a minute, as the backup engine does.
func addAttempt(t *testing.T, s *site, uuid, unit, source string, ok bool, ago time.Duration, summary string) {
	t.Helper()
	end := time.Now().Add(-ago)
	_, err := history.New(filepath.Join(s.varDir, "history")).Append(uuid, history.Attempt{
		Source: source, Unit: unit, Begin: end.Add(-time.Minute), End: end, Success: ok, Summary: summary,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		setup    func(t *testing.T, s *site)
		wantCode int
		// wantFirst matches the first line; wantLines are the lines after
		// it (matched as regular expressions).
		wantFirst string
		wantLines []string
	}{
		{
			name:      "nothing backed up yet",
			setup:     func(*testing.T, *site) {},
			wantCode:  0,
			wantFirst: `^TURKU-STORAGE OK - 0 sources of 0 machines backed up within 48h0m0s \| machines=0;;;0 sources=0;;;0 stale=0;;;0 oldest_age=0s;;172800;0 full_volumes=0;;;0 unusable_volumes=0;;;0 spooled_reports=0;;;0 failing=0;;;0 never_backed_up=0;;;0 'used_default'=[0-9.]+%;;95;0;100( 'inodes_used_default'=[0-9.]+%;;95;0;100)?$`,
		},
		{
			name: "all recent",
			setup: func(t *testing.T, s *site) {
				addSnapshot(t, s, uuidOld, "web1", "etc", 3*time.Hour)
				addSnapshot(t, s, uuidNew, "db1", "etc", time.Hour)
				addSnapshot(t, s, uuidNew, "db1", "var", 20*time.Hour)
			},
			wantCode:  0,
			wantFirst: `^TURKU-STORAGE OK - 3 sources of 2 machines backed up within 48h0m0s \| machines=2;;;0 sources=3;;;0 stale=0;;;0 oldest_age=720\d\ds;`,
		},
		{
			name: "one stale",
			setup: func(t *testing.T, s *site) {
				addSnapshot(t, s, uuidOld, "web1", "etc", 50*time.Hour)
				addSnapshot(t, s, uuidNew, "db1", "etc", time.Hour)
			},
			wantCode:  2,
			wantFirst: `^TURKU-STORAGE CRITICAL - 1 of 2 sources has no successful backup within 48h0m0s \| machines=2;;;0 sources=2;;;0 stale=1;;;0 oldest_age=180\d\d\ds;;172800;0 `,
			wantLines: []string{`^CRITICAL: ` + uuidOld + ` \(prod-www-web1\) etc: newest snapshot etc_\d{8}-\d{6}_ab12 finished 50h0m ago$`},
		},
		{
			name: "warning level",
			args: []string{"--warn-age", "24h"},
			setup: func(t *testing.T, s *site) {
				addSnapshot(t, s, uuidOld, "web1", "etc", 30*time.Hour)
			},
			wantCode:  1,
			wantFirst: `^TURKU-STORAGE WARNING - 1 of 1 source has no successful backup within 24h0m0s \| .* oldest_age=108\d\d\ds;86400;172800;0 `,
			wantLines: []string{`^WARNING: ` + uuidOld + ` \(prod-www-web1\) etc: newest snapshot .* finished 30h0m ago$`},
		},
		{
			name: "max-age flag",
			args: []string{"--max-age", "2h"},
			setup: func(t *testing.T, s *site) {
				addSnapshot(t, s, uuidOld, "web1", "etc", 3*time.Hour)
			},
			wantCode:  2,
			wantFirst: `^TURKU-STORAGE CRITICAL - 1 of 1 source has no successful backup within 2h0m0s \|`,
			wantLines: []string{`^CRITICAL: .* etc: newest snapshot .* finished 3h0m ago$`},
		},
		{
			name: "a source that never succeeded is late from its first attempt",
			args: []string{"--max-age", "1h"},
			setup: func(t *testing.T, s *site) {
				addSnapshot(t, s, uuidOld, "web1", "etc", 10*time.Minute)
				for _, ago := range []time.Duration{2 * time.Hour, time.Hour, 5 * time.Minute} {
					addAttempt(t, s, uuidOld, "web1", "home", false, ago, "Source home: rsync exited with return code 23\nrsync: change_dir \"/nonexistent\" failed\n")
				}
			},
			wantCode:  2,
			wantFirst: `^TURKU-STORAGE CRITICAL - 1 of 2 sources has no successful backup within 1h0m0s; 1 source failing \| machines=1;;;0 sources=2;;;0 stale=1;;;0 oldest_age=72\d\ds;;3600;0 .* failing=1;;;0 never_backed_up=1;;;0 `,
			wantLines: []string{`^CRITICAL: ` + uuidOld + ` \(prod-www-web1\) home: never backed up; first attempt 2h1m ago \(.*\); 3 attempts failed in a row, the last 5m ago: Source home: rsync exited with return code 23$`},
		},
		{
			name: "a failing source with an old snapshot names its last error",
			setup: func(t *testing.T, s *site) {
				addSnapshot(t, s, uuidOld, "web1", "etc", 50*time.Hour)
				addAttempt(t, s, uuidOld, "web1", "etc", false, time.Hour, "volume default is read-only\n")
			},
			wantCode:  2,
			wantLines: []string{`^CRITICAL: ` + uuidOld + ` \(prod-www-web1\) etc: newest snapshot etc_\d{8}-\d{6}_ab12 finished 50h0m ago; 1 attempt failed in a row, the last 1h0m ago: volume default is read-only$`},
			wantFirst: `^TURKU-STORAGE CRITICAL - 1 of 1 source has no successful backup within 48h0m0s; 1 source failing \|`,
		},
		{
			name: "a failing source within max-age is OK but counted",
			setup: func(t *testing.T, s *site) {
				addAttempt(t, s, uuidNew, "db1", "var", false, time.Hour, "rsync exited with return code 5\n")
			},
			wantCode:  0,
			wantFirst: `^TURKU-STORAGE OK - 1 source of 1 machine backed up within 48h0m0s; 1 source failing \| .* failing=1;;;0 never_backed_up=1;;;0 `,
		},
		{
			name: "a machine assigned long ago that never checked in",
			args: []string{"--max-age", "1h"},
			setup: func(t *testing.T, s *site) {
				if _, err := history.New(filepath.Join(s.varDir, "history")).SetAssigned(map[string]string{uuidNew: "db1"}, time.Now().Add(-2*time.Hour)); err != nil {
					t.Fatal(err)
				}
			},
			wantCode:  2,
			wantFirst: `^TURKU-STORAGE CRITICAL - 0 sources of 1 machine backed up within 1h0m0s; 1 machine assigned here never backed up \| machines=1;;;0 sources=0;;;0 stale=0;;;0 .* never_backed_up=1;;;0 `,
			wantLines: []string{`^CRITICAL: ` + uuidNew + ` \(db1\): assigned to this storage unit 2h0m ago \(.*\) and never backed up: no source has checked in$`},
		},
		{
			name: "snapshot-less source is counted, not checked",
			setup: func(t *testing.T, s *site) {
				addSnapshot(t, s, uuidOld, "web1", "etc", time.Hour)
				if err := os.Mkdir(filepath.Join(s.volume, uuidOld, "db"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			wantCode:  0,
			wantFirst: `^TURKU-STORAGE OK - 1 source of 1 machine backed up within 48h0m0s \| machines=1;;;0 sources=2;;;0 stale=0;;;0 `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t, nil)
			tt.setup(t, s)
			r := run(t, context.Background(), nil, append([]string{"-c", s.dir, "check"}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d", r.code, tt.wantCode)
			}
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if !regexp.MustCompile(tt.wantFirst).MatchString(lines[0]) {
				t.Errorf("first line\n%s\ndoes not match\n%s", lines[0], tt.wantFirst)
			}
			if len(lines)-1 != len(tt.wantLines) {
				t.Fatalf("got %d detail lines %q, want %d", len(lines)-1, lines[1:], len(tt.wantLines))
			}
			for i, re := range tt.wantLines {
				if !regexp.MustCompile(re).MatchString(lines[i+1]) {
					t.Errorf("line %d %q does not match %s", i+2, lines[i+1], re)
				}
			}
			if r.stderr != "" && tt.wantCode != 0 {
				// run prints the error like main would; main stays
				// quiet for check's own statuses.
				if !quietExitPrinted(r.stderr) {
					t.Errorf("stderr %q", r.stderr)
				}
			}
		})
	}
}

// quietExitPrinted reports whether stderr holds only what the test's run
// helper prints for any error (main does not print quiet ones).
func quietExitPrinted(stderr string) bool {
	return regexp.MustCompile(`^turku-storage: (OK|WARNING|CRITICAL)\n$`).MatchString(stderr)
}

func TestCheckUnknown(t *testing.T) {
	s := newSite(t, nil)
	if err := os.WriteFile(filepath.Join(s.dir, "config.d", "20-bad.json"), []byte(`{"max_usage_pct": 0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, context.Background(), nil, "-c", s.dir, "check")
	if r.code != 3 || !strings.HasPrefix(r.stdout, "TURKU-STORAGE UNKNOWN - invalid configuration") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("exit %d, stdout %q; want 3 and one UNKNOWN line", r.code, r.stdout)
	}
}

func TestSnapshotsOverview(t *testing.T) {
	s := newSite(t, nil)
	old := addSnapshot(t, s, uuidOld, "web1", "etc", 50*time.Hour)
	first := addSnapshot(t, s, uuidNew, "db1", "etc", 26*time.Hour)
	second := addSnapshot(t, s, uuidNew, "db1", "etc", 2*time.Hour)

	r := run(t, context.Background(), nil, "-c", s.dir, "snapshots")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	want := []string{
		`^MACHINE\s+NAMES\s+SOURCE\s+LATEST\s+AGE\s+SNAPSHOTS\s+SPACE$`,
		`^` + uuidOld + `\s+prod-www-web1\s+etc\s+` + old + `\s+50h0m\s+1\s+\?$`,
		`^` + uuidNew + `\s+prod-www-db1\s+etc\s+` + second + `\s+2h0m\s+2\s+\?$`,
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), r.stdout)
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i+1, lines[i], re)
		}
	}

	r = run(t, context.Background(), nil, "-c", s.dir, "snapshots", "--json")
	var got []backup.MachineOverview
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	names := map[string]map[string][]string{}
	for _, m := range got {
		names[m.UUID] = map[string][]string{}
		for _, src := range m.Sources {
			for _, sn := range src.Snapshots {
				names[m.UUID][src.Name] = append(names[m.UUID][src.Name], sn.Name)
			}
		}
	}
	wantNames := map[string]map[string][]string{
		uuidOld: {"etc": {old}},
		uuidNew: {"etc": {first, second}},
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("--json snapshot names (-want +got):\n%s", diff)
	}
	if got[1].Path != filepath.Join(s.volume, uuidNew) || got[1].Names[0] != "prod-www-db1" || got[1].Sources[0].Latest != second || got[1].Sources[0].Count != 2 {
		t.Errorf("--json machine %+v", got[1])
	}
}

// TestYoungSnapshotAge: a snapshot finished seconds ago has an age in
// the overview and in check's lines, not an empty one.
func TestYoungSnapshotAge(t *testing.T) {
	s := newSite(t, nil)
	name := addSnapshot(t, s, uuidNew, "db1", "etc", 20*time.Second)
	r := run(t, context.Background(), nil, "-c", s.dir, "snapshots")
	if !regexp.MustCompile(`(?m)^` + uuidNew + `\s+prod-www-db1\s+etc\s+` + name + `\s+\d+s\s+1\s+\?$`).MatchString(r.stdout) {
		t.Errorf("overview: want an age in seconds:\n%s", r.stdout)
	}
	r = run(t, context.Background(), nil, "-c", s.dir, "check", "--max-age", "1s")
	if !regexp.MustCompile(`(?m)^CRITICAL: .* etc: newest snapshot ` + name + ` finished \d+s ago$`).MatchString(r.stdout) {
		t.Errorf("check: want the age in seconds:\n%s", r.stdout)
	}
}

// TestCheckDeletedSnapshot: a snapshot deleted by hand after check read
// it (and indexed it) is not taken for a backup by the next check, even
// though the history says its backup succeeded.
func TestCheckDeletedSnapshot(t *testing.T) {
	s := newSite(t, nil)
	old := addSnapshot(t, s, uuidOld, "web1", "etc", 50*time.Hour)
	newest := addSnapshot(t, s, uuidOld, "web1", "etc", time.Hour)
	end := time.Now().Add(-time.Hour)
	if _, err := history.New(filepath.Join(s.varDir, "history")).Append(uuidOld, history.Attempt{
		Source: "etc", Unit: "web1", Begin: end.Add(-time.Minute), End: end, Success: true, Snapshot: newest}); err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(s.volume, uuidOld, "etc.snapshots")
	for _, step := range []struct {
		remove string
		code   int
		line   string
	}{
		{"", 0, ""},
		{newest, 2, `^CRITICAL: ` + uuidOld + ` \(prod-www-web1\) etc: newest snapshot ` + old + ` finished 50h0m ago \(the last successful backup's, ` + newest + `, is no longer on disk\)$`},
		{old, 2, `^CRITICAL: ` + uuidOld + ` \(prod-www-web1\) etc: no snapshot on disk; that of its last successful backup, ` + newest + `, was deleted$`},
	} {
		if step.remove != "" {
			if err := os.RemoveAll(filepath.Join(snapDir, step.remove)); err != nil {
				t.Fatal(err)
			}
		}
		r := run(t, context.Background(), nil, "-c", s.dir, "check")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if r.code != step.code || (step.line == "") != (len(lines) == 1) || (step.line != "" && !regexp.MustCompile(step.line).MatchString(lines[1])) {
			t.Errorf("after removing %q: exit %d, want %d and %s:\n%s", step.remove, r.code, step.code, step.line, r.stdout)
		}
	}
}
