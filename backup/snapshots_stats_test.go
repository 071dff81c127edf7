package backup

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/rsync"
)

// TestListSnapshotsStats: a .json with the figures gives them back, one
// written by the old code (the four keys only) gives none.
func TestListSnapshotsStats(t *testing.T) {
	mdir := t.TempDir()
	dir := snapshotsDir(mdir, "etc")
	finish := time.Date(2026, 11, 25, 3, 16, 0, 0, time.UTC)
	stats := &rsync.TransferStats{Files: 6, NewFiles: 5, FilesTransferred: 4, TotalSize: 3, TransferredSize: 2, BytesReceived: 1}
	for _, snap := range []struct {
		name string
		st   *rsync.TransferStats
	}{{"etc_20261125-031600_0001", nil}, {"etc_20261126-031600_0002", stats}} {
		name, st := snap.name, snap.st
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), encodeInfo(name, "", finish.Add(-time.Minute), finish, st), 0o644); err != nil {
			t.Fatal(err)
		}
		finish = finish.Add(24 * time.Hour)
	}
	snaps, err := ListSnapshots(mdir, "etc", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2", len(snaps))
	}
	if snaps[0].Stats != nil {
		t.Errorf("old .json: stats %+v, want none", *snaps[0].Stats)
	}
	if diff := cmp.Diff(stats, snaps[1].Stats); diff != "" {
		t.Errorf("new .json stats (-want +got):\n%s", diff)
	}
	if got, want := snaps[1].Duration(), time.Minute; got != want {
		t.Errorf("duration %v, want %v", got, want)
	}
}
