package backup

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/history"
)

// indexUnit is a VAR_DIR and a volume laid out as serve and the old unit
// leave them, for the index tests.
type indexUnit struct {
	t           *testing.T
	varDir, vol string
	t0          time.Time
}

func newIndexUnit(t *testing.T) *indexUnit {
	root := t.TempDir()
	u := &indexUnit{t: t, varDir: filepath.Join(root, "var"), vol: filepath.Join(root, "vol"), t0: time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)}
	if err := os.MkdirAll(MachinesDir(u.varDir), 0o755); err != nil {
		t.Fatal(err)
	}
	return u
}

// machine links uuid (and name, if not empty) to its directory on the
// volume, made if missing.
func (u *indexUnit) machine(uuid, name string) string {
	dir := filepath.Join(u.vol, uuid)
	u.mkdir(dir)
	if err := os.Symlink(dir, filepath.Join(MachinesDir(u.varDir), uuid)); err != nil {
		u.t.Fatal(err)
	}
	if name != "" {
		if err := os.Symlink(uuid, filepath.Join(MachinesDir(u.varDir), name)); err != nil {
			u.t.Fatal(err)
		}
	}
	return dir
}

func (u *indexUnit) mkdir(p string) {
	if err := os.MkdirAll(p, 0o755); err != nil {
		u.t.Fatal(err)
	}
}

func (u *indexUnit) write(p, data string) {
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		u.t.Fatal(err)
	}
}

// snapshot commits a snapshot of source day days after t0, with its
// .json (withJSON false: as the old unit left some, the name's time
// only), and points latest at it.
func (u *indexUnit) snapshot(dir, source string, day int, withJSON bool) string {
	sd := snapshotsDir(dir, source)
	u.mkdir(sd)
	t := u.t0.Add(time.Duration(day) * 24 * time.Hour)
	name := snapshotName(source, t, "ab12")
	u.mkdir(filepath.Join(sd, name))
	if withJSON {
		u.write(filepath.Join(sd, name+".json"), string(encodeInfo(name, "", t.Add(-time.Minute), t.Add(7*time.Minute), nil)))
	}
	os.Remove(filepath.Join(sd, latestLink))
	if err := os.Symlink(name, filepath.Join(sd, latestLink)); err != nil {
		u.t.Fatal(err)
	}
	return name
}

// indexRow is what a listing says of a machine, comparable.
type indexRow struct {
	UUID, Dir string
	Names     []string
	Sources   []indexRowSource
	Err       string
	Usage     SnapshotUsage
	UsageErr  string
}

type indexRowSource struct {
	Name, Newest, Path string
	Count              int
	Finish             time.Time
	Latest             bool
}

func indexRows(ms []MachineSummary) []indexRow {
	var out []indexRow
	for _, m := range ms {
		r := indexRow{UUID: m.UUID, Dir: m.Dir, Names: m.Names, Usage: m.Usage}
		if m.Err != nil {
			r.Err = m.Err.Error()
		}
		if m.UsageErr != nil {
			r.UsageErr = m.UsageErr.Error()
		}
		for _, s := range m.Sources {
			rs := indexRowSource{Name: s.Name, Count: s.Count}
			if n := s.Newest; n != nil {
				rs.Newest, rs.Path, rs.Finish, rs.Latest = n.Name, n.Path, n.SyncFinish, n.Latest
			}
			r.Sources = append(r.Sources, rs)
		}
		out = append(out, r)
	}
	return out
}

// walked is what the full walk says: Inventory, and MachineUsage of each
// machine it could read.
func (u *indexUnit) walked() []indexRow {
	inv, err := Inventory(u.t.Context(), u.varDir, time.UTC)
	if err != nil {
		u.t.Fatal(err)
	}
	ms := make([]MachineSummary, len(inv))
	for i, m := range inv {
		ms[i] = MachineSummary{UUID: m.UUID, Dir: m.Dir, Names: m.Names, Err: m.Err}
		for _, s := range m.Sources {
			ms[i].Sources = append(ms[i].Sources, summary(s, false))
		}
		if m.Err == nil {
			ms[i].Usage, ms[i].UsageErr = MachineUsage(m.Dir)
			if ms[i].UsageErr != nil {
				ms[i].Usage = SnapshotUsage{}
			}
		}
	}
	return indexRows(ms)
}

// summaries lists with the index, the clock an hour ahead so that every
// directory's stamp is old enough to keep (as when the index was written
// long after the last change), and returns the log.
func (u *indexUnit) summaries(rescan bool) ([]indexRow, string) {
	var log bytes.Buffer
	ms, err := Summaries(u.t.Context(), u.varDir, IndexOptions{Location: time.UTC, Rescan: rescan,
		Log: slog.New(slog.NewTextHandler(&log, nil)), Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		u.t.Fatal(err)
	}
	return indexRows(ms), log.String()
}

func (u *indexUnit) indexPath() string { return filepath.Join(u.varDir, history.DirName, IndexFile) }

// nextTick returns once the filesystem's clock has moved past the
// change time of dir, so that the next change to dir moves its stamp
// (the kernel stamps with a clock of a few milliseconds' resolution).
func nextTick(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(t.TempDir(), "tick")
	for {
		if err := os.WriteFile(probe, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		pi, err := os.Stat(probe)
		if err != nil {
			t.Fatal(err)
		}
		if stampOf(pi).Ctime > stampOf(fi).Ctime {
			return
		}
	}
}

const (
	idxA = "11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa" // two sources, one in mode none
	idxB = "22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb" // of the old unit: no .json, no ledger, no history
	idxC = "33333333-cccc-4ccc-8ccc-cccccccccccc" // its directory is gone
	idxD = "44444444-dddd-4ddd-8ddd-dddddddddddd" // no source yet
)

// TestSummariesAgainstWalk: what Summaries lists, with the index missing,
// up to date and after backups, retention and snapshots deleted by hand,
// is what the full walk lists; it changes nothing on disk but the index.
func TestSummariesAgainstWalk(t *testing.T) {
	u := newIndexUnit(t)
	a := u.machine(idxA, "prod-www-web1")
	for day := range 3 {
		u.snapshot(a, "etc", day, true)
	}
	u.write(filepath.Join(snapshotsDir(a, "etc"), usageFile), `{"bytes": 4096}`)
	u.mkdir(filepath.Join(a, "db"))
	b := u.machine(idxB, "prod-www-old1")
	u.snapshot(b, "home", 0, false)
	u.snapshot(b, "home", 1, false)
	u.snapshot(b, "var", 1, false)
	u.machine(idxC, "")
	if err := os.Remove(filepath.Join(u.vol, idxC)); err != nil {
		t.Fatal(err)
	}
	u.machine(idxD, "")
	before := listTree(t, u.vol)

	check := func(step string) {
		t.Helper()
		got, log := u.summaries(false)
		if diff := cmp.Diff(u.walked(), got); diff != "" {
			t.Errorf("%s: Summaries against the walk (-walk +index):\n%s", step, diff)
		}
		if log != "" {
			t.Errorf("%s: log %q", step, log)
		}
	}
	check("no index")
	if _, err := os.Stat(u.indexPath()); err != nil {
		t.Fatalf("no index written: %v", err)
	}
	if diff := cmp.Diff(before, listTree(t, u.vol)); diff != "" {
		t.Errorf("Summaries changed the volume (-before +after):\n%s", diff)
	}
	check("index up to date")

	// The index is what is read: a .json rewritten in place (no entry
	// of the directory changes) is not seen until a rescan.
	etc := snapshotsDir(a, "etc")
	newest := snapshotName("etc", u.t0.Add(48*time.Hour), "ab12")
	moved := u.t0.Add(50 * time.Hour)
	u.write(filepath.Join(etc, newest+".json"), string(encodeInfo(newest, "", moved, moved, nil)))
	if got, _ := u.summaries(false); !got[0].Sources[1].Finish.Equal(u.t0.Add(48*time.Hour + 7*time.Minute)) {
		t.Errorf("a listing from the index read the rewritten .json: %v", got[0].Sources[1].Finish)
	}
	if got, _ := u.summaries(true); !got[0].Sources[1].Finish.Equal(moved) {
		t.Errorf("--rescan: finish %v, want %v", got[0].Sources[1].Finish, moved)
	}

	for _, d := range []string{a, etc, b, snapshotsDir(b, "home"), snapshotsDir(b, "var")} {
		nextTick(t, d)
	}
	// A backup, and retention removing the oldest.
	u.snapshot(a, "etc", 3, true)
	if err := os.RemoveAll(filepath.Join(etc, snapshotName("etc", u.t0, "ab12"))); err != nil {
		t.Fatal(err)
	}
	// The newest of home deleted by hand: its latest link dangles.
	if err := os.RemoveAll(filepath.Join(snapshotsDir(b, "home"), snapshotName("home", u.t0.Add(24*time.Hour), "ab12"))); err != nil {
		t.Fatal(err)
	}
	// Every snapshot of var deleted by hand, and its directory.
	if err := os.RemoveAll(snapshotsDir(b, "var")); err != nil {
		t.Fatal(err)
	}
	// A source of A gets snapshots.
	u.snapshot(a, "db", 4, true)
	check("after backups, retention and deletions")
	got, _ := u.summaries(false)
	if s := got[1].Sources; len(s) != 1 || s[0].Name != "home" || s[0].Count != 1 || s[0].Latest {
		t.Errorf("old unit's machine after deletions: %+v, want home alone with 1 snapshot, not latest", s)
	}
	if got[0].Sources[1].Count != 3 || got[0].Sources[1].Newest != snapshotName("etc", u.t0.Add(72*time.Hour), "ab12") {
		t.Errorf("etc after a backup and retention: %+v", got[0].Sources[1])
	}
}

// TestSummariesBadIndex: an index that is damaged, of another format or
// zone, or not a file is rebuilt from the disk with a log line; the one
// written in its place is whole, and no temporary file is left.
func TestSummariesBadIndex(t *testing.T) {
	for _, tt := range []struct {
		name, content, log string
	}{
		{"garbage", "\x00\x01 not an index\n", "snapshot index unreadable"},
		{"truncated", indexMagic + "\t1\tUTC\nM\t/x\t1\t2\n", "snapshot index unreadable"},
		{"JSON", `{"format": 1, "machines": {}}`, "snapshot index unreadable"},
		{"older format", indexMagic + "\t0\tUTC\n", "snapshot index of another format"},
		{"another zone", indexMagic + "\t1\tEurope/Helsinki\n", "snapshot index of another time zone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := newIndexUnit(t)
			a := u.machine(idxA, "prod-www-web1")
			u.snapshot(a, "etc", 0, true)
			u.mkdir(filepath.Dir(u.indexPath()))
			u.write(u.indexPath(), tt.content)
			got, log := u.summaries(false)
			if diff := cmp.Diff(u.walked(), got); diff != "" {
				t.Errorf("Summaries against the walk (-walk +index):\n%s", diff)
			}
			if !strings.Contains(log, tt.log) || !strings.Contains(log, "rebuilding it from the disk") {
				t.Errorf("log %q, want %q", log, tt.log)
			}
			data, err := os.ReadFile(u.indexPath())
			if err != nil {
				t.Fatal(err)
			}
			x, err := decodeIndex(data)
			if err != nil || x.Format != indexFormat || len(x.Machines) != 1 {
				t.Errorf("index written: %v, %+v", err, x)
			}
			if files := listTree(t, filepath.Dir(u.indexPath())); !cmp.Equal(files, []string{IndexFile}) {
				t.Errorf("history holds %q, want the index alone", files)
			}
			if _, log := u.summaries(false); log != "" {
				t.Errorf("second listing logged %q", log)
			}
		})
	}
}

// TestSummariesUnwritable: where the index cannot be written, the listing
// is right all the same, with a log line.
func TestSummariesUnwritable(t *testing.T) {
	u := newIndexUnit(t)
	a := u.machine(idxA, "")
	u.snapshot(a, "etc", 0, true)
	u.write(filepath.Join(u.varDir, history.DirName), "a file where the directory should be")
	for range 2 {
		got, log := u.summaries(false)
		if diff := cmp.Diff(u.walked(), got); diff != "" {
			t.Errorf("Summaries against the walk (-walk +index):\n%s", diff)
		}
		if !strings.Contains(log, "snapshot index not written") {
			t.Errorf("log %q, want a line saying the index was not written", log)
		}
	}
}

// TestSummariesRacy: a directory that changed shortly before a listing
// is read again by the next one, whatever its stamp then says.
func TestSummariesRacy(t *testing.T) {
	u := newIndexUnit(t)
	a := u.machine(idxA, "")
	u.snapshot(a, "etc", 0, true)
	ms, err := Summaries(t.Context(), u.varDir, IndexOptions{})
	if err != nil || len(ms) != 1 {
		t.Fatal(ms, err)
	}
	data, err := os.ReadFile(u.indexPath())
	if err != nil {
		t.Fatal(err)
	}
	x, err := decodeIndex(data)
	if err != nil {
		t.Fatal(err)
	}
	if s := x.Machines[a].Sources["etc"]; s.Stamp != (dirStamp{}) || x.Machines[a].Stamp != (dirStamp{}) {
		t.Errorf("stamps of directories changed just now were kept: %+v, %+v", x.Machines[a].Stamp, s.Stamp)
	}
}

// TestIndexEncoding: names with tabs, newlines, quotes or nothing at all
// come back as they were written.
func TestIndexEncoding(t *testing.T) {
	x := &snapIndex{Format: indexFormat, Location: "Europe/Helsinki", Machines: map[string]*indexMachine{
		"/vol/with\ttab": {Stamp: dirStamp{Mtime: 1, Ctime: 2, Ino: 3}, Sources: map[string]*indexSource{
			"etc": {HasDir: true, Stamp: dirStamp{Mtime: -4, Ctime: 5, Ino: 1 << 63}, Latest: `la"test`, Usage: -1, UsageErr: "source etc: read usage:\nbad",
				Snapshots: []indexSnap{{Dir: "etc_1", Finish: 7}, {Dir: "new\nline", Name: `back\slash`, Finish: -8}, {Dir: `"`, Finish: 0}}},
			"":   {Usage: 12},
			"db": {Usage: -1},
		}},
		"/vol/empty": {Sources: map[string]*indexSource{}},
	}}
	got, err := decodeIndex(x.encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(x, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
