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

	"github.com/turku-backup/turku-storage/backup"
)

// TestSnapshotsDu: snapshots of the old unit have no figures and no
// known space; --du counts it once (each hard-linked file once) and the
// overview shows it from then on.
func TestSnapshotsDu(t *testing.T) {
	s := newSite(t, nil)
	first := addSnapshot(t, s, uuidNew, "db1", "etc", 26*time.Hour)
	second := addSnapshot(t, s, uuidNew, "db1", "etc", 2*time.Hour)
	snapDir := filepath.Join(s.volume, uuidNew, "etc.snapshots")
	if err := os.WriteFile(filepath.Join(snapDir, first, "data"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(snapDir, first, "data"), filepath.Join(snapDir, second, "data")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snapDir, second, "more"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := run(t, context.Background(), nil, "-c", s.dir, "snapshots", uuidNew, "etc")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^SOURCE\s+SNAPSHOT\s+FINISHED\s+BASE\s+LATEST\s+SIZE\s+TRANSFERRED\s+FILES\s+DURATION$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^etc\s+`+second+`\s+\S+\s+-\s+latest\s+-\s+-\s+-\s+-$`).MatchString(lines[2]) {
		t.Errorf("snapshots UUID etc:\n%s", r.stdout)
	}

	overview := func(args ...string) backup.MachineOverview {
		t.Helper()
		r := run(t, context.Background(), nil, append([]string{"-c", s.dir, "snapshots", "--json"}, args...)...)
		var got []backup.MachineOverview
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 1 {
			t.Fatalf("snapshots --json %v: exit %d, %v\n%s%s", args, r.code, err, r.stdout, r.stderr)
		}
		return got[0]
	}
	if m := overview(); m.UsageKnown || m.Sources[0].UsageBytes != nil {
		t.Errorf("before --du: %+v, want the space unknown", m)
	}
	if _, err := os.Stat(filepath.Join(snapDir, ".usage.json")); !os.IsNotExist(err) {
		t.Errorf("a listing wrote the usage ledger: %v", err)
	}
	m := overview("--du")
	if !m.UsageKnown || m.UsageBytes != 13 || m.Sources[0].UsageBytes == nil || *m.Sources[0].UsageBytes != 13 {
		t.Errorf("--du: %+v, want 13 bytes (data once, more)", m)
	}
	if m := overview(); !m.UsageKnown || m.UsageBytes != 13 {
		t.Errorf("after --du: %+v, want 13 bytes kept", m)
	}
	r = run(t, context.Background(), nil, "-c", s.dir, "snapshots")
	if !regexp.MustCompile(`(?m)^` + uuidNew + `\s+prod-www-db1\s+etc\s+` + second + `\s+2h0m\s+2\s+13 B$`).MatchString(r.stdout) {
		t.Errorf("overview does not show 13 B:\n%s", r.stdout)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "snapshots", uuidNew, "--du"); r.code != 1 || !strings.Contains(r.stderr, "--du") {
		t.Errorf("snapshots UUID --du: exit %d, stderr %q; want a refusal naming --du", r.code, r.stderr)
	}
}

// TestSnapshotsDeletedBase: after retention removed a snapshot, the one
// linked against it names its base as deleted, not as if it were there.
func TestSnapshotsDeletedBase(t *testing.T) {
	s := newSite(t, nil)
	first := addSnapshot(t, s, uuidNew, "db1", "etc", 50*time.Hour)
	second := addSnapshot(t, s, uuidNew, "db1", "etc", 26*time.Hour)
	third := addSnapshot(t, s, uuidNew, "db1", "etc", 2*time.Hour)
	snapDir := filepath.Join(s.volume, uuidNew, "etc.snapshots")
	for name, base := range map[string]string{second: first, third: second} {
		if err := os.WriteFile(filepath.Join(snapDir, name+".json"), []byte(`{"base": "`+base+`", "name": "`+name+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(snapDir, first)); err != nil {
		t.Fatal(err)
	}
	r := run(t, context.Background(), nil, "-c", s.dir, "snapshots", uuidNew, "etc")
	for _, re := range []string{
		`(?m)^etc\s+` + second + `\s+\S+\s+\(deleted\) ` + first + `\s`,
		`(?m)^etc\s+` + third + `\s+\S+\s+` + second + `\s+latest\s`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("snapshots lacks %s:\n%s", re, r.stdout)
		}
	}
	r = run(t, context.Background(), nil, "-c", s.dir, "snapshots", uuidNew, "etc", "--json")
	var got map[string][]backup.SnapshotEntry
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got["etc"]) != 2 {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if !got["etc"][0].BaseDeleted || got["etc"][1].BaseDeleted {
		t.Errorf("--json base_deleted: %+v", got["etc"])
	}
}
