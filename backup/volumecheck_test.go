package backup

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/internal/tmpfs"
	"github.com/turku-backup/turku-storage/rsync"
)

func states(hs []VolumeHealth) map[string]string {
	out := map[string]string{}
	for _, h := range hs {
		out[h.Volume] = h.State
	}
	return out
}

// The states a plain directory tree can show, and the marker's life: a
// volume without one (the old layout) is marked on first healthy use and
// recorded; once recorded, a volume without it is "not mounted". Without
// mark nothing is written.
func TestCheckVolumesStates(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	varDir := filepath.Join(root, "var")
	ok, file := filepath.Join(root, "ok"), filepath.Join(root, "file")
	for _, d := range []string{varDir, ok} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	vols := []Volume{{Name: "ok", Path: ok}, {Name: "gone", Path: filepath.Join(root, "gone")}, {Name: "file", Path: file}}

	hs := CheckVolumes(varDir, vols, false)
	if diff := cmp.Diff(map[string]string{"ok": VolumeOK, "gone": VolumeMissing, "file": VolumeNotDir}, states(hs)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if got, want := hs[1].Err().Error(), "volume gone is missing (stat "+filepath.Join(root, "gone")+": no such file or directory)"; got != want {
		t.Errorf("missing: %q, want %q", got, want)
	}
	if got := listTree(t, ok); got != nil {
		t.Errorf("a check without mark wrote %v", got)
	}
	if _, err := os.Stat(filepath.Join(varDir, KnownVolumesFile)); !os.IsNotExist(err) {
		t.Errorf("a check without mark wrote %s: %v", KnownVolumesFile, err)
	}

	hs = CheckVolumes(varDir, vols[:1], true)
	if !hs[0].OK() || !hs[0].Marked || hs[0].MarkErr != nil {
		t.Fatalf("first healthy use: %+v, want ok and marked", hs[0])
	}
	var m volumeMarker
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(ok, MarkerFile))), &m); err != nil || m.Volume != "ok" || m.Created.IsZero() {
		t.Errorf("marker %+v, %v", m, err)
	}
	known, err := loadKnown(varDir)
	if err != nil || known.Volumes[ok].Name != "ok" {
		t.Errorf("%s: %+v, %v", KnownVolumesFile, known, err)
	}
	if hs := CheckVolumes(varDir, vols[:1], true); !hs[0].OK() || hs[0].Marked {
		t.Errorf("second use: %+v, want ok, not marked again", hs[0])
	}
	// A marker whose record was lost (volumes.json not written) is
	// recorded again on the next use.
	if err := os.Remove(filepath.Join(varDir, KnownVolumesFile)); err != nil {
		t.Fatal(err)
	}
	if hs := CheckVolumes(varDir, vols[:1], true); !hs[0].OK() || hs[0].Marked || hs[0].MarkErr != nil {
		t.Errorf("use without record: %+v, want ok, not marked again", hs[0])
	}
	if known, err := loadKnown(varDir); err != nil || known.Volumes[ok].Name != "ok" {
		t.Errorf("%s not written again: %+v, %v", KnownVolumesFile, known, err)
	}

	// The filesystem that held the marker is gone: an empty mount point.
	if err := os.Remove(filepath.Join(ok, MarkerFile)); err != nil {
		t.Fatal(err)
	}
	hs = CheckVolumes(varDir, vols[:1], true)
	if got, want := hs[0].Err().Error(), "volume ok is not mounted (marker .turku-storage-volume missing)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := listTree(t, ok); got != nil {
		t.Errorf("an unmounted volume got %v written", got)
	}
}

// markedTmpfsVolume mounts a small tmpfs as volume "v" and has
// CheckVolumes mark it, as a first start on a new disk does.
func markedTmpfsVolume(t *testing.T) (vol, varDir string, vols []Volume) {
	t.Helper()
	vol = filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	tmpfs.Mount(t, vol, "size=4m")
	vols = []Volume{{Name: "v", Path: vol}}
	varDir = t.TempDir()
	if hs := CheckVolumes(varDir, vols, true); !hs[0].Marked {
		t.Fatalf("%+v, want marked", hs[0])
	}
	return vol, varDir, vols
}

// A volume whose filesystem is mounted read-only, as ext4's
// errors=remount-ro leaves it, is "read-only" even for root; remounted
// read-write it is healthy again.
func TestCheckVolumesReadOnly(t *testing.T) {
	t.Parallel()
	vol, varDir, vols := markedTmpfsVolume(t)
	tmpfs.Remount(t, vol, "ro")
	hs := CheckVolumes(varDir, vols, true)
	if got, want := hs[0].Err().Error(), "volume v is read-only"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	tmpfs.Remount(t, vol, "rw")
	if hs := CheckVolumes(varDir, vols, true); !hs[0].OK() {
		t.Errorf("after remount rw: %+v", hs[0])
	}
}

// A marked volume whose filesystem is unmounted shows its empty mount
// point: "not mounted", and nothing is written there.
func TestCheckVolumesUnmounted(t *testing.T) {
	t.Parallel()
	vol, varDir, vols := markedTmpfsVolume(t)
	tmpfs.Unmount(t, vol)
	if got := states(CheckVolumes(varDir, vols, true)); got["v"] != VolumeNotMounted {
		t.Errorf("state %q, want %q", got["v"], VolumeNotMounted)
	}
	if got := listTree(t, vol); got != nil {
		t.Errorf("mount point got %v", got)
	}
}

// df runs df(1) with args on path and returns its data line's fields.
func df(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("df", args...).Output()
	if err != nil {
		t.Fatalf("df %v: %v", args, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Fields(lines[len(lines)-1])
}

func dfInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSuffix(s, "%"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// DiskUsage agrees with df -P and df -Pi: used and available 1K blocks,
// Use% (df rounds up), inodes and IUse%. On a quiet tmpfs the figures are
// exact; on the test directory's filesystem, which other tests write to,
// Use% may move by a point.
func TestDiskUsageMatchesDf(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, dir string, exact bool) {
		u, err := DiskUsage(dir)
		if err != nil {
			t.Fatal(err)
		}
		b := df(t, "-P", dir) // Filesystem 1024-blocks Used Available Capacity Mounted
		i := df(t, "-Pi", dir)
		usePct := int64(math.Ceil(u.UsedPct))
		if exact {
			if got, want := u.UsedBytes>>10, dfInt(t, b[2]); got != want {
				t.Errorf("used %d KiB, df says %d", got, want)
			}
			if got, want := u.FreeBytes>>10, dfInt(t, b[3]); got != want {
				t.Errorf("available %d KiB, df says %d", got, want)
			}
			if want := dfInt(t, b[4]); usePct != want {
				t.Errorf("used %.2f%% (%d%% rounded up), df says %d%%", u.UsedPct, usePct, want)
			}
			if got, want := u.Inodes-u.InodesFree, dfInt(t, i[2]); got != want {
				t.Errorf("inodes used %d, df -i says %d", got, want)
			}
		} else if want := dfInt(t, b[4]); usePct < want-1 || usePct > want+1 {
			t.Errorf("used %.2f%%, df says %d%%", u.UsedPct, want)
		}
		if i[4] != "-" {
			if got, want := int64(math.Ceil(u.InodeUsedPct)), dfInt(t, i[4]); got < want-1 || got > want+1 || (exact && got != want) {
				t.Errorf("inodes used %.2f%%, df -i says %d%%", u.InodeUsedPct, want)
			}
		}
		if got, want := u.Inodes, dfInt(t, i[1]); got != want {
			t.Errorf("inodes %d, df -i says %d", got, want)
		}
	}
	t.Run("test directory", func(t *testing.T) { check(t, t.TempDir(), false) })
	t.Run("tmpfs", func(t *testing.T) {
		dir := t.TempDir()
		tmpfs.Mount(t, dir, "size=8m", "nr_inodes=100")
		agenttest.WriteTree(t, dir, map[string]string{"a": strings.Repeat("x", 3<<20), "b/c": "y"})
		check(t, dir, true)
	})
}

// tmpfsEnv is integrationEnv with the volume on a tmpfs of its own.
func tmpfsEnv(t *testing.T, files map[string]string, opts ...string) (*testEnv, *fakeAgent, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	env, agent, srcDir := integrationEnv(t, apiclient.Source{Retention: "last 5 snapshots"}, files)
	tmpfs.Mount(t, env.volume, opts...)
	return env, agent, srcDir
}

// wantRefused checks a pull that must fail on the volume: the report and
// the agent carry want, the volume is as it was, and the earlier
// snapshot is intact.
func wantRefused(t *testing.T, env *testEnv, err error, want string, before []string, first apiclient.SourceReport) {
	t.Helper()
	if err == nil {
		t.Fatal("pull succeeded")
	}
	rep := env.api.onlyReport(t)
	if rep.Success || rep.Snapshot != "" {
		t.Errorf("report %+v, want a failure without snapshot", rep)
	}
	if !strings.Contains(rep.Summary, want) {
		t.Errorf("report summary %q does not contain %q", rep.Summary, want)
	}
	if !strings.Contains(env.agent.String(), "Source etc: storage "+want) {
		t.Errorf("agent was not told %q; it saw:\n%s", want, env.agent.String())
	}
	if diff := cmp.Diff(before, listTree(t, env.volume)); diff != "" {
		t.Errorf("volume changed (-before +after):\n%s", diff)
	}
	if got := readFile(t, filepath.Join(env.machineDir(), "etc.snapshots", first.Snapshot, "f.txt")); got != "one" {
		t.Errorf("earlier snapshot's f.txt %q, want %q", got, "one")
	}
}

// A volume that went read-only (ext4's errors=remount-ro): the next
// backup fails at once saying so, nothing is written, the earlier
// snapshot stays; once remounted read-write the next backup works.
func TestIntegrationReadOnlyVolume(t *testing.T) {
	t.Parallel()
	env, agent, srcDir := tmpfsEnv(t, map[string]string{"f.txt": "one"}, "size=16m")
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatalf("first pull: %v", err)
	}
	first := env.api.onlyReport(t)
	if _, err := os.Stat(filepath.Join(env.volume, MarkerFile)); err != nil {
		t.Errorf("volume not marked on first use: %v", err)
	}

	tmpfs.Remount(t, env.volume, "ro")
	agenttest.WriteTree(t, srcDir, map[string]string{"f.txt": "two", "new.txt": "new"})
	before := listTree(t, env.volume)
	env.api.reset()
	err := env.pull(t, t.Context(), agent, creds("etc"))
	wantRefused(t, env, err, "volume vol1 is read-only", before, first)

	tmpfs.Remount(t, env.volume, "rw")
	env.api.reset()
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatalf("pull after remount rw: %v", err)
	}
	rep := env.api.onlyReport(t)
	if got := readFile(t, filepath.Join(env.machineDir(), "etc.snapshots", rep.Snapshot, "new.txt")); got != "new" {
		t.Errorf("new snapshot's new.txt %q", got)
	}
}

// A volume out of inodes: the guard refuses the backup (max_inode_usage_pct)
// with a summary saying so; once inodes are freed the next backup works.
func TestIntegrationOutOfInodes(t *testing.T) {
	t.Parallel()
	env, agent, srcDir := tmpfsEnv(t, map[string]string{"f.txt": "one"}, "size=16m", "nr_inodes=200")
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatalf("first pull: %v", err)
	}
	first := env.api.onlyReport(t)
	fill := tmpfs.FillInodes(t, env.volume)

	agenttest.WriteTree(t, srcDir, map[string]string{"f.txt": "two", "new.txt": "new"})
	before := listTree(t, env.volume)
	env.api.reset()
	err := env.pull(t, t.Context(), agent, creds("etc"))
	wantRefused(t, env, err, "volume vol1: 100.0% of inodes used, above its limit of 95% (max_inode_usage_pct): no backup started", before, first)

	if err := os.RemoveAll(fill); err != nil {
		t.Fatal(err)
	}
	env.wantPullSucceeds(t, agent, "after freeing inodes")
}

// When the guard lets a backup through (max_inode_usage_pct 100) but the
// volume has no inode left, rsync's failure is explained by the volume.
func TestIntegrationOutOfInodesDuringBackup(t *testing.T) {
	t.Parallel()
	env, agent, srcDir := tmpfsEnv(t, map[string]string{"f.txt": "one"}, "size=16m", "nr_inodes=200")
	env.e.maxInodeUsage = 100
	env.e.volumes[0].MaxInodeUsagePct = 100
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatalf("first pull: %v", err)
	}
	first := env.api.onlyReport(t)
	tmpfs.FillInodes(t, env.volume)
	agenttest.WriteTree(t, srcDir, map[string]string{"f.txt": "two", "new.txt": "new"})
	env.api.reset()
	if err := env.pull(t, t.Context(), agent, creds("etc")); err == nil {
		t.Fatal("pull succeeded on a volume without inodes")
	}
	rep := env.api.onlyReport(t)
	if want := "volume vol1 is out of inodes (100.0% of inodes used): "; rep.Success || !strings.HasPrefix(rep.Summary, want) {
		t.Errorf("report %+v, want a failure whose summary starts %q", rep, want)
	}
	if snaps, err := ListSnapshots(env.machineDir(), "etc", env.e.loc); err != nil || len(snaps) != 1 || snaps[0].Name != first.Snapshot {
		t.Errorf("snapshots %v, %v; want only %s", snaps, err, first.Snapshot)
	}
}

// A volume that goes read-only while rsync runs: rsync's failure is
// reported with the volume's state first, and rsync's own lines after it.
func TestVolumeReadOnlyDuringBackup(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	var volume string
	env := newTestEnv(t, map[string]apiclient.Source{"etc": {}}, func(o *Options) {
		volume = o.Volumes[0].Path
		// The stand-in for rsync remounts the volume read-only, as
		// ext4's errors=remount-ro would midway, and fails as rsync does.
		o.RsyncCommand = agenttest.Script(t, "mount -o remount,ro "+volume+"\necho 'rsync: write failed: Read-only file system (30)'\nexit 23\n")
	})
	tmpfs.Mount(t, volume, "size=4m")
	if err := env.e.Pull(t.Context(), env.request(creds("etc"))); err == nil {
		t.Fatal("pull succeeded")
	}
	rep := env.api.onlyReport(t)
	want := "volume vol1 is read-only: rsync exited with return code 23\n"
	if rep.Success || !strings.HasPrefix(rep.Summary, want) || !strings.Contains(rep.Summary, "Read-only file system (30)") {
		t.Errorf("summary %q, want it to start %q and end with rsync's output", rep.Summary, want)
	}
	if !strings.Contains(env.agent.String(), "Source etc: storage volume vol1 is read-only: rsync exited with return code 23") {
		t.Errorf("agent saw:\n%s", env.agent.String())
	}
}

// The agent is told the volume and its state, and rsync's exit when rsync
// failed; the report summary has the details too.
func TestVolumeErrorMessages(t *testing.T) {
	t.Parallel()
	missing := &VolumeError{Volume: "v", State: VolumeMissing, Detail: "stat /srv/v: no such file or directory"}
	tests := []struct {
		name           string
		err            error
		agent, summary string
	}{
		{name: "missing", err: missing,
			agent:   "Source etc: storage volume v is missing",
			summary: "volume v is missing (stat /srv/v: no such file or directory)\n"},
		{name: "read-only under rsync",
			err:     &VolumeError{Volume: "v", State: VolumeReadOnly, Cause: &rsync.Error{Code: 23, Tail: []string{"last line"}}},
			agent:   "Source etc: storage volume v is read-only: rsync exited with return code 23",
			summary: "volume v is read-only: rsync exited with return code 23\nlast line\n"},
		{name: "read-only under a storage error",
			err:     &VolumeError{Volume: "v", State: VolumeReadOnly, Cause: errors.New("create working tree: mkdir /srv/v/x: read-only file system")},
			agent:   "Source etc: storage volume v is read-only",
			summary: "volume v is read-only: create working tree: mkdir /srv/v/x: read-only file system\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := agentMessage("etc", tt.err); got != tt.agent {
				t.Errorf("agent: got %q, want %q", got, tt.agent)
			}
			if got := failureSummary(tt.err); got != tt.summary {
				t.Errorf("summary: got %q, want %q", got, tt.summary)
			}
		})
	}
}

// The live state reads the disk when asked: each volume's space (an error
// for one that cannot be examined) with its placement settings, and the
// reports spooled in VAR_DIR/reports (unreadable ones, renamed *.bad, not
// counted).
func TestStatusReadsDisk(t *testing.T) {
	vol := t.TempDir()
	gone := filepath.Join(vol, "missing")
	got := VolumeStatus(t.TempDir(), []Volume{
		{Name: "default", Path: vol, AcceptNew: true, HighWaterPct: 80, MaxUsagePct: 95},
		{Name: "gone", Path: gone},
	})
	if len(got) != 2 {
		t.Fatalf("volumes %+v", got)
	}
	if v := got[0]; v.SizeBytes <= 0 || v.FreeBytes <= 0 || v.SizeBytes < v.FreeBytes || v.Err != "" ||
		!v.AcceptNew || v.HighWaterPct != 80 || v.MaxUsagePct != 95 {
		t.Errorf("volume %+v, want its size, free space and settings", v)
	}
	if v := got[1]; v.Err == "" || !strings.Contains(v.Err, gone) || v.State != VolumeMissing || !strings.HasPrefix(v.Message, "volume gone is missing") {
		t.Errorf("missing volume %+v, want state missing and an error naming it", v)
	}
	if v := got[0]; v.State != VolumeOK || v.Message != "" || v.Inodes <= 0 || v.UsedBytes <= 0 {
		t.Errorf("volume %+v, want state ok, inodes and used bytes", v)
	}

	varDir := t.TempDir()
	reports := filepath.Join(varDir, "reports")
	if err := os.Mkdir(reports, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"00000000000000000001-ab.json", "00000000000000000002-cd.json", "x.json.bad"} {
		if err := os.WriteFile(filepath.Join(reports, f), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n := SpooledReports(varDir); n != 2 {
		t.Errorf("spooled reports %d, want 2 (the .bad file is not queued)", n)
	}
}
