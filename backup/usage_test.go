package backup

import (
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/rsync"
)

// treeCount is what rsync counts of a source tree: every entry, the top
// directory included, and the regular files' sizes.
func treeCount(t *testing.T, dir string) (entries, size int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		entries++
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			size += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries, size
}

// uniqueInodeBytes is du's way of counting the directories in dir (the
// snapshots, not the .json files): every regular file's size once per
// inode.
func uniqueInodeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || filepath.Dir(path) == dir {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		ino := fi.Sys().(*syscall.Stat_t).Ino
		if !seen[ino] {
			seen[ino] = true
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// backupDoneLines returns the attributes of each "backup done" log line.
func backupDoneLines(t *testing.T, log *syncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "backup done" {
			out = append(out, m)
		}
	}
	return out
}

// TestIntegrationSizes backs a source up three times with the real rsync
// and checks the figures in each .json against the tree rsync copied and
// the usage ledger against a count of the snapshots' distinct inodes,
// across a retention deletion and a full measurement.
func TestIntegrationSizes(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"a.txt":     strings.Repeat("a", 1000),
		"b.txt":     strings.Repeat("b", 2000),
		"sub/c.txt": strings.Repeat("c", 300),
		"sub/empty": "",
	}
	srcDir := filepath.Join(t.TempDir(), "etc")
	agenttest.WriteTree(t, srcDir, files)
	agent := newFakeAgent(t, agentModule{"etc", srcDir, "user-etc", "pw-etc"})
	logBuf := &syncBuffer{}
	var lockDir string
	env := newTestEnv(t, map[string]apiclient.Source{"etc": {Retention: "last 2 snapshots"}}, func(o *Options) {
		o.Now = nil
		o.Logger = slog.New(slog.NewJSONHandler(logBuf, nil))
		lockDir = o.LockDir
	})
	mdir := env.machineDir()
	snapDir := snapshotsDir(mdir, "etc")

	pull := func(step string) Snapshot {
		t.Helper()
		env.api.reset()
		if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
			t.Fatalf("%s: pull: %v", step, err)
		}
		rep := env.api.onlyReport(t)
		if !rep.Success {
			t.Fatalf("%s: backup failed: %s", step, rep.Summary)
		}
		snaps, err := ListSnapshots(mdir, "etc", nil)
		if err != nil {
			t.Fatal(err)
		}
		s := newest(snaps)
		if s == nil || s.dirName() != rep.Snapshot || s.Stats == nil {
			t.Fatalf("%s: newest snapshot %+v, want %s with figures", step, s, rep.Snapshot)
		}
		if !strings.Contains(rep.Summary, "Transfer: ") {
			t.Errorf("%s: summary %q has no transfer figures", step, rep.Summary)
		}
		return *s
	}
	checkUsage := func(step string) {
		t.Helper()
		want := uniqueInodeBytes(t, snapDir)
		u, err := MachineUsage(mdir)
		if err != nil {
			t.Fatal(err)
		}
		if !u.Known || u.Bytes != want || u.Sources["etc"] != want {
			t.Errorf("%s: usage %+v, want %d bytes known (the snapshots' distinct inodes)", step, u, want)
		}
	}

	// 1: everything is new.
	first := pull("first")
	entries, size := treeCount(t, srcDir)
	want := rsync.TransferStats{Files: entries, NewFiles: entries - 1, FilesTransferred: 4, TotalSize: size, TransferredSize: size}
	got := *first.Stats
	if got.BytesReceived <= 0 {
		t.Errorf("first: bytes received %d, want > 0", got.BytesReceived)
	}
	got.BytesReceived = 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("first: figures (-want +got):\n%s", diff)
	}
	checkUsage("first")

	// 2: one file changed; only it is sent.
	agenttest.WriteTree(t, srcDir, map[string]string{"b.txt": strings.Repeat("B", 2500)})
	second := pull("second")
	if got, want := second.Stats.TransferredSize, int64(2500); got != want {
		t.Errorf("second: transferred size %d, want %d (b.txt)", got, want)
	}
	if got, want := second.Stats.FilesTransferred, int64(1); got != want {
		t.Errorf("second: files transferred %d, want %d", got, want)
	}
	if _, size := treeCount(t, srcDir); second.Stats.TotalSize != size {
		t.Errorf("second: total size %d, want %d", second.Stats.TotalSize, size)
	}
	checkUsage("second")

	// 3: a new file; retention removes the first snapshot and with it the
	// only copy of b.txt's first version.
	agenttest.WriteTree(t, srcDir, map[string]string{"d.txt": strings.Repeat("d", 700)})
	third := pull("third")
	if got, want := third.Stats.TransferredSize, int64(700); got != want {
		t.Errorf("third: transferred size %d, want %d (d.txt)", got, want)
	}
	if _, err := os.Stat(first.Path); !os.IsNotExist(err) {
		t.Fatalf("first snapshot not removed by retention: %v", err)
	}
	checkUsage("third")
	if got, want := uniqueInodeBytes(t, snapDir), int64(1000+2500+300+700); got != want {
		t.Errorf("snapshots hold %d bytes, want %d", got, want)
	}

	done := backupDoneLines(t, logBuf)
	if len(done) != 3 {
		t.Fatalf("%d backup done lines, want 3", len(done))
	}
	for i, s := range []Snapshot{first, second, third} {
		for key, v := range map[string]int64{"bytes": s.Stats.BytesReceived, "files": s.Stats.Files, "new_files": s.Stats.NewFiles, "total_size": s.Stats.TotalSize, "transferred_size": s.Stats.TransferredSize} {
			if got, ok := done[i][key].(float64); !ok || int64(got) != v {
				t.Errorf("backup done %d: %s = %v, want %d (the .json's)", i+1, key, done[i][key], v)
			}
		}
	}

	// A source whose ledger is gone (snapshots of the old unit) is
	// unknown until measured; then backups keep it up to date again.
	if err := os.Remove(filepath.Join(snapDir, usageFile)); err != nil {
		t.Fatal(err)
	}
	if u, err := MachineUsage(mdir); err != nil || u.Known || u.Sources["etc"] != -1 {
		t.Errorf("usage without ledger: %+v, %v; want unknown", u, err)
	}
	pull("fourth, no ledger")
	if u, err := MachineUsage(mdir); err != nil || u.Known {
		t.Errorf("usage after a backup without ledger: %+v, %v; want still unknown", u, err)
	}
	u, err := MeasureUsage(lockDir, testUUID, mdir)
	if err != nil {
		t.Fatal(err)
	}
	if want := uniqueInodeBytes(t, snapDir); !u.Known || u.Bytes != want {
		t.Errorf("measured usage %+v, want %d bytes", u, want)
	}
	agenttest.WriteTree(t, srcDir, map[string]string{"e.txt": strings.Repeat("e", 50)})
	pull("fifth")
	checkUsage("fifth")
}

// TestRemoveTreeMeasured: only files whose last link goes are freed,
// including files with two links inside the removed tree.
func TestRemoveTreeMeasured(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	keep := filepath.Join(root, "keep")
	doomed := filepath.Join(root, "doomed")
	agenttest.WriteTree(t, keep, map[string]string{"shared": "12345"})
	agenttest.WriteTree(t, doomed, map[string]string{"own": "1234567", "x/inner": "123"})
	for _, l := range [][2]string{
		{filepath.Join(keep, "shared"), filepath.Join(doomed, "shared")},
		{filepath.Join(doomed, "x", "inner"), filepath.Join(doomed, "inner-again")},
	} {
		if err := os.Link(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("own", filepath.Join(doomed, "sym")); err != nil {
		t.Fatal(err)
	}
	freed, err := removeTreeMeasured(doomed)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(7 + 3); freed != want {
		t.Errorf("freed %d bytes, want %d (own and inner once; shared stays)", freed, want)
	}
	if _, err := os.Lstat(doomed); !os.IsNotExist(err) {
		t.Errorf("tree not removed: %v", err)
	}
	if got := readFile(t, filepath.Join(keep, "shared")); got != "12345" {
		t.Errorf("shared file = %q", got)
	}
}

// TestUsageLedgerBad: a ledger that is not ours is an error naming it,
// and changes nothing.
func TestUsageLedgerBad(t *testing.T) {
	t.Parallel()
	mdir := t.TempDir()
	dir := snapshotsDir(mdir, "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, usageFile)
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := MachineUsage(mdir)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "source etc") {
		t.Errorf("MachineUsage with a bad ledger: %v, want an error naming source etc and %s", err, path)
	}
	if got := readFile(t, path); got != "garbage" {
		t.Errorf("ledger changed to %q", got)
	}
}

// TestUsageNeedsFigures: an rsync that printed no --stats block makes a
// snapshot but no ledger, so the space stays unknown rather than 0.
func TestUsageNeedsFigures(t *testing.T) {
	t.Parallel()
	rec := t.TempDir()
	env := newTestEnv(t, map[string]apiclient.Source{"etc": {}}, func(o *Options) { o.RsyncCommand = recordingRsync(t, rec, 0, "receiving incremental file list") })
	if err := env.e.Pull(t.Context(), env.request(creds("etc"))); err != nil {
		t.Fatal(err)
	}
	if rep := env.api.onlyReport(t); !rep.Success || rep.Snapshot == "" || strings.Contains(rep.Summary, "Transfer: ") {
		t.Fatalf("report %+v, want a snapshot and no transfer line", rep)
	}
	if _, err := os.Stat(filepath.Join(snapshotsDir(env.machineDir(), "etc"), usageFile)); !os.IsNotExist(err) {
		t.Errorf("ledger written without figures: %v", err)
	}
	if u, err := MachineUsage(env.machineDir()); err != nil || u.Known {
		t.Errorf("usage %+v, %v; want unknown", u, err)
	}
}
