package backup

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/history"
)

const (
	orphanUUID    = "11111111-1111-4111-8111-111111111111"
	neighbourUUID = "22222222-2222-4222-8222-222222222222"
)

// purgeSite is a storage unit with two machines on one volume, each with
// a snapshot, a UUID link and a name link, and a directory outside every
// volume.
type purgeSite struct {
	varDir, lockDir, vol, outside string
}

func newPurgeSite(t *testing.T) purgeSite {
	t.Helper()
	root := t.TempDir()
	s := purgeSite{varDir: filepath.Join(root, "var"), lockDir: filepath.Join(root, "lock"),
		vol: filepath.Join(root, "vol"), outside: filepath.Join(root, "outside")}
	for _, uuid := range []string{orphanUUID, neighbourUUID} {
		snap := filepath.Join(s.vol, uuid, "etc.snapshots", "etc_20261201-030000_ab12")
		writeFileT(t, filepath.Join(snap, "hosts"), "127.0.0.1 localhost\n")
		linkT(t, filepath.Join(s.vol, uuid), filepath.Join(MachinesDir(s.varDir), uuid))
		linkT(t, uuid, filepath.Join(MachinesDir(s.varDir), "prod-web-"+uuid[:2]))
	}
	writeFileT(t, filepath.Join(s.outside, "precious"), "keep me\n")
	return s
}

func writeFileT(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func linkT(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func (s purgeSite) opts(assigned ...string) PurgeOptions {
	return PurgeOptions{VarDir: s.varDir, LockDir: s.lockDir, Volumes: []Volume{{Name: "v", Path: s.vol}},
		Assigned: func() (map[string]apiclient.MachineInfo, error) {
			m := map[string]apiclient.MachineInfo{}
			for _, u := range assigned {
				m[u] = apiclient.MachineInfo{UnitName: "web"}
			}
			return m, nil
		}}
}

// mustExist fails unless every path is there (links not followed).
func mustExist(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %v, want it untouched", p, err)
		}
	}
}

func TestPurgeMachineRemovesOnlyThatMachine(t *testing.T) {
	s := newPurgeSite(t)
	// Links planted inside the orphan pointing at its neighbour and
	// outside the volumes: removal must unlink them, never follow them.
	linkT(t, filepath.Join(s.vol, neighbourUUID), filepath.Join(s.vol, orphanUUID, "etc.snapshots", "etc_20261201-030000_ab12", "neighbour"))
	linkT(t, s.outside, filepath.Join(s.vol, orphanUUID, "escape"))
	got, err := PurgeMachine(s.opts(neighbourUUID), orphanUUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dir != filepath.Join(s.vol, orphanUUID) || len(got.Links) != 2 {
		t.Errorf("got %+v, want its directory and two links removed", got)
	}
	for _, p := range []string{filepath.Join(s.vol, orphanUUID), filepath.Join(MachinesDir(s.varDir), orphanUUID),
		filepath.Join(MachinesDir(s.varDir), "prod-web-"+orphanUUID[:2])} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want it removed", p, err)
		}
	}
	mustExist(t, filepath.Join(s.vol, neighbourUUID, "etc.snapshots", "etc_20261201-030000_ab12", "hosts"),
		filepath.Join(MachinesDir(s.varDir), neighbourUUID), filepath.Join(MachinesDir(s.varDir), "prod-web-"+neighbourUUID[:2]),
		filepath.Join(s.outside, "precious"))
}

func TestPurgeMachineRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s purgeSite) (PurgeOptions, string)
		want  error // nil: any error
	}{
		{"assigned here", func(t *testing.T, s purgeSite) (PurgeOptions, string) {
			return s.opts(orphanUUID, neighbourUUID), orphanUUID
		}, ErrAssigned},
		{"assignment unknown", func(t *testing.T, s purgeSite) (PurgeOptions, string) {
			o := s.opts()
			o.Assigned = func() (map[string]apiclient.MachineInfo, error) { return nil, errors.New("no key cache") }
			return o, orphanUUID
		}, nil},
		{"backup running", func(t *testing.T, s purgeSite) (PurgeOptions, string) {
			l, err := lockMachine(s.lockDir, orphanUUID)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Unlock() })
			return s.opts(neighbourUUID), orphanUUID
		}, ErrBusy},
		{"link points off the volumes", func(t *testing.T, s purgeSite) (PurgeOptions, string) {
			link := filepath.Join(MachinesDir(s.varDir), orphanUUID)
			if err := os.Remove(link); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(s.vol, orphanUUID), filepath.Join(s.outside, orphanUUID)); err != nil {
				t.Fatal(err)
			}
			linkT(t, filepath.Join(s.outside, orphanUUID), link)
			return s.opts(neighbourUUID), orphanUUID
		}, nil},
		{"link points at another machine", func(t *testing.T, s purgeSite) (PurgeOptions, string) {
			link := filepath.Join(MachinesDir(s.varDir), orphanUUID)
			if err := os.Remove(link); err != nil {
				t.Fatal(err)
			}
			linkT(t, filepath.Join(s.vol, neighbourUUID), link)
			return s.opts(neighbourUUID), orphanUUID
		}, nil},
		{"machine dir is a link", func(t *testing.T, s purgeSite) (PurgeOptions, string) {
			dir := filepath.Join(s.vol, orphanUUID)
			if err := os.Rename(dir, filepath.Join(s.outside, orphanUUID)); err != nil {
				t.Fatal(err)
			}
			linkT(t, filepath.Join(s.outside, orphanUUID), dir)
			return s.opts(neighbourUUID), orphanUUID
		}, nil},
		{"volume not mounted", func(t *testing.T, s purgeSite) (PurgeOptions, string) {
			o := s.opts(neighbourUUID)
			// Marked once healthy; its marker gone now: the mount point
			// is seen, not the filesystem.
			if h := CheckVolumes(s.varDir, o.Volumes, true)[0]; !h.OK() || !h.Marked {
				t.Fatalf("marking the volume: %+v", h)
			}
			if err := os.Remove(filepath.Join(s.vol, MarkerFile)); err != nil {
				t.Fatal(err)
			}
			return o, orphanUUID
		}, nil},
		{"not a machine", func(t *testing.T, s purgeSite) (PurgeOptions, string) {
			return s.opts(neighbourUUID), "../outside"
		}, nil},
		{"no such machine", func(t *testing.T, s purgeSite) (PurgeOptions, string) {
			return s.opts(neighbourUUID), "33333333-3333-4333-8333-333333333333"
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPurgeSite(t)
			opts, uuid := tt.setup(t, s)
			before := treeOf(t, filepath.Dir(s.vol))
			_, err := PurgeMachine(opts, uuid)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("got %v, want an error (%v)", err, tt.want)
			}
			if after := treeOf(t, filepath.Dir(s.vol)); len(after) != len(before) {
				t.Errorf("%d entries before, %d after a refusal (%v)", len(before), len(after), err)
			}
		})
	}
}

// treeOf lists every path under root, links not followed.
func treeOf(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if filepath.Base(p) != filepath.Base(root) && filepath.Dir(p) != filepath.Join(root, "lock") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOrphansAfterRefresh(t *testing.T) {
	s := newPurgeSite(t)
	hist := history.New(filepath.Join(s.varDir, history.DirName))
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	both := map[string]history.Listed{orphanUUID: {Unit: "web1", Key: "k1"}, neighbourUUID: {Unit: "web2", Key: "k2"}}
	links, err := MachineLinks(s.varDir)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for u := range links {
		onDisk = append(onDisk, u)
	}
	if _, err := hist.RecordRefresh(history.Listing{Machines: both, OnDisk: onDisk}, t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := Orphans(s.varDir, hist); len(got) != 0 {
		t.Fatalf("orphans while both are assigned: %+v", got)
	}
	// The coordinator moved the first machine away.
	delete(both, orphanUUID)
	for i := range 2 {
		if _, err := hist.RecordRefresh(history.Listing{Machines: both, OnDisk: onDisk}, t0.Add(time.Duration(i+1)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Orphans(s.varDir, hist)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].UUID != orphanUUID || got[0].Unit != "web1" || !got[0].Since.Equal(t0.Add(time.Hour)) ||
		got[0].Dir != filepath.Join(s.vol, orphanUUID) {
		t.Fatalf("got %+v, want %s (web1) orphaned since the first refresh without it", got, orphanUUID)
	}
	// The same, read from VAR_DIR/history as snapshots and check do.
	if since := OrphanedSince(s.varDir); len(since) != 1 || !since[orphanUUID].Equal(t0.Add(time.Hour)) {
		t.Errorf("OrphanedSince = %v, want %s since %v", since, orphanUUID, t0.Add(time.Hour))
	}
	// Purged: no longer listed, even before the next refresh.
	if _, err := PurgeMachine(s.opts(neighbourUUID), orphanUUID); err != nil {
		t.Fatal(err)
	}
	if got, _ := Orphans(s.varDir, hist); len(got) != 0 {
		t.Errorf("orphans after the purge: %+v", got)
	}
}
