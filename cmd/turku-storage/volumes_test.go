package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/internal/tmpfs"
)

// config check runs the volume check: a missing volume or a file in its
// place fails it, naming the volume and what is wrong; a healthy volume
// passes and nothing is written to it.
func TestConfigCheckVolumes(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, s *site)
		wantCode int
		want     string
	}{
		{name: "healthy", setup: func(*testing.T, *site) {}},
		{name: "missing", setup: func(t *testing.T, s *site) {
			if err := os.Remove(s.volume); err != nil {
				t.Fatal(err)
			}
		}, wantCode: 1, want: "volumes.default.path: volume default is missing (stat "},
		{name: "not a directory", setup: func(t *testing.T, s *site) {
			if err := os.Remove(s.volume); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.volume, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, wantCode: 1, want: "volumes.default.path: volume default is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t, nil)
			tt.setup(t, s)
			r := run(t, context.Background(), nil, "-c", s.dir, "config", "check")
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, r.stderr)
			}
			if tt.wantCode != 0 && !strings.Contains(r.stderr, `msg="volume unusable" volume=default`) {
				t.Errorf("no ERROR log line naming the volume:\n%s", r.stderr)
			}
			if _, err := os.Lstat(filepath.Join(s.volume, backup.MarkerFile)); tt.wantCode == 0 && !os.IsNotExist(err) {
				t.Errorf("config check wrote a marker: %v", err)
			}
		})
	}
}

// serve with a missing volume starts, says at ERROR what is wrong with the
// volume, and still refreshes the keys (the volume is left out of the
// space advertised) instead of "refresh from API failed".
func TestServeMissingVolume(t *testing.T) {
	api, s := newAPISite(t, nil)
	registered(t, api, s)
	if err := os.Remove(filepath.Join(s.volume, backup.MarkerFile)); err != nil {
		t.Fatal(err) // update-config marked it
	}
	if err := os.Remove(s.volume); err != nil {
		t.Fatal(err)
	}
	d := startServe(t, s)
	d.log.WaitFor(t, "refreshed machines from API", 1, waitLong)
	log := d.log.String()
	if !strings.Contains(log, `level=ERROR msg="volume unusable" volume=default state=missing`) {
		t.Errorf("no ERROR naming the missing volume:\n%s", log)
	}
	if strings.Contains(log, "refresh from API failed") {
		t.Errorf("a missing volume failed the key refresh:\n%s", log)
	}
	reqs := api.Requests("storage_update_config")
	if got := reqs[len(reqs)-1].Body["storage"].(map[string]any)["space_total"]; got != float64(0) {
		t.Errorf("space_total %v, want 0 without a usable volume", got)
	}
	r := run(t, context.Background(), nil, "-c", s.dir, "check")
	if r.code != 2 || !strings.Contains(r.stdout, "CRITICAL: volume default is missing") {
		t.Errorf("check: exit %d, stdout %q; want 2 naming the missing volume", r.code, r.stdout)
	}
}

// The read-only volume, end to end: after a first backup the
// volume's filesystem goes read-only. The next backup fails, telling the
// agent and the API why; nothing is written, the earlier snapshot stays;
// /metrics, status and check show it. Remounted read-write, the next
// backup works. A volume out of inodes is refused by the guard likewise,
// and an unmounted one is "not mounted".
func TestServeUnusableVolume(t *testing.T) {
	api, s := newAPISite(t, map[string]any{"metrics_listen": "127.0.0.1:0"})
	tmpfs.Mount(t, s.volume, "size=16m", "nr_inodes=200")
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"f": "one"})
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s)
	if res := a.ping(t, d, hostKeys).Wait(t, waitLong); res.ExitCode != 0 {
		t.Fatalf("first backup: exit %d\n%s", res.ExitCode, res.Stderr)
	}
	mdir := filepath.Join(s.volume, machineUUID)
	snaps := func() []backup.Snapshot {
		t.Helper()
		list, err := backup.ListSnapshots(mdir, "etc", time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	first := snaps()
	if len(first) != 1 {
		t.Fatalf("snapshots %v after the first backup", first)
	}
	d.log.WaitFor(t, `msg="report delivered"`, 1, waitLong)
	writable := func() float64 {
		return mustSample(t, scrape(t, d.metrics), "turku_storage_volume_writable", "volume", "default")
	}
	if got := writable(); got != 1 {
		t.Errorf("writable %v, want 1", got)
	}

	failing := func(t *testing.T, reports int, want string) {
		t.Helper()
		api.SetDue(machineUUID, "etc", true)
		res := a.ping(t, d, hostKeys).Wait(t, waitLong)
		if res.ExitCode == 0 {
			t.Fatal("backup succeeded")
		}
		if !strings.Contains(res.Stderr, "Source etc: storage "+want) {
			t.Errorf("agent not told %q:\n%s", want, res.Stderr)
		}
		d.log.WaitFor(t, `msg="report delivered"`, reports, waitLong)
		rep := api.Reports()
		if last := rep[len(rep)-1]; last.Success || !strings.Contains(last.Summary, want) {
			t.Errorf("report %+v, want a failure saying %q", last, want)
		}
		if got := snaps(); len(got) != len(first) || got[len(got)-1].Name != first[len(first)-1].Name {
			t.Errorf("snapshots %v, want %v unchanged", got, first)
		}
		if data, err := os.ReadFile(filepath.Join(first[0].Path, "f")); err != nil || string(data) != "one" {
			t.Errorf("earlier snapshot's f: %q, %v", data, err)
		}
		r := run(t, context.Background(), nil, "-c", s.dir, "check")
		if r.code != 2 || !strings.Contains(r.stdout, "volume default") {
			t.Errorf("check: exit %d, stdout %q; want CRITICAL naming volume default", r.code, r.stdout)
		}
	}

	t.Run("read-only", func(t *testing.T) {
		tmpfs.Remount(t, s.volume, "ro")
		failing(t, 2, "volume default is read-only")
		if got := writable(); got != 0 {
			t.Errorf("writable %v, want 0", got)
		}
		r := run(t, context.Background(), nil, "-c", s.dir, "check")
		if !strings.Contains(r.stdout, "CRITICAL: volume default is read-only") {
			t.Errorf("check:\n%s", r.stdout)
		}
		tmpfs.Remount(t, s.volume, "rw")
		api.SetDue(machineUUID, "etc", true)
		if res := a.ping(t, d, hostKeys).Wait(t, waitLong); res.ExitCode != 0 {
			t.Fatalf("backup after remount rw: exit %d\n%s", res.ExitCode, res.Stderr)
		}
		d.log.WaitFor(t, `msg="report delivered"`, 3, waitLong)
		first = snaps()
		if len(first) != 2 {
			t.Fatalf("snapshots %v after remount rw, want 2", first)
		}
		if got := writable(); got != 1 {
			t.Errorf("writable %v after remount rw, want 1", got)
		}
	})

	t.Run("out of inodes", func(t *testing.T) {
		fill := tmpfs.FillInodes(t, s.volume)
		failing(t, 4, "volume default: 100.0% of inodes used, above its limit of 95% (max_inode_usage_pct): no backup started")
		r := run(t, context.Background(), nil, "-c", s.dir, "check")
		if !strings.Contains(r.stdout, "CRITICAL: volume default: 100.0% of inodes used, above max_inode_usage_pct 95%") {
			t.Errorf("check:\n%s", r.stdout)
		}
		if got := mustSample(t, scrape(t, d.metrics), "turku_storage_volume_inodes_free", "volume", "default"); got != 0 {
			t.Errorf("inodes free %v, want 0", got)
		}
		if err := os.RemoveAll(fill); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("not mounted", func(t *testing.T) {
		d.stop(t)
		tmpfs.Unmount(t, s.volume)
		r := run(t, context.Background(), nil, "-c", s.dir, "check")
		if r.code != 2 || !strings.Contains(r.stdout, "CRITICAL: volume default is not mounted (marker .turku-storage-volume missing)") {
			t.Errorf("check: exit %d, stdout:\n%s", r.code, r.stdout)
		}
		r = run(t, context.Background(), nil, "-c", s.dir, "config", "check")
		if r.code == 0 || !strings.Contains(r.stderr, "volumes.default.path: volume default is not mounted") {
			t.Errorf("config check: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if entries, err := os.ReadDir(s.volume); err != nil || len(entries) != 0 {
			t.Errorf("mount point: %v, %v; want it left empty", entries, err)
		}
	})
}
