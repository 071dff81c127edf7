package backup

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPlacementChoosesAmongSuitableVolumes(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	vols := []Volume{
		{Name: "closed", Path: filepath.Join(root, "closed"), AcceptNew: false, HighWaterPct: 100},
		{Name: "full", Path: filepath.Join(root, "full"), AcceptNew: true, HighWaterPct: 0}, // set to 1% below
		{Name: "missing", Path: filepath.Join(root, "missing"), AcceptNew: true, HighWaterPct: 100},
		{Name: "a", Path: filepath.Join(root, "a"), AcceptNew: true, HighWaterPct: 100},
		{Name: "b", Path: filepath.Join(root, "b"), AcceptNew: true, HighWaterPct: 100},
	}
	for _, v := range vols {
		if v.Name != "missing" {
			if err := os.Mkdir(v.Path, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := statVolume(root)
	if err != nil {
		t.Fatal(err)
	}
	if st.usedPct() < 1 {
		t.Skip("test filesystem is almost empty; cannot put a volume above its high-water mark")
	}
	env := newTestEnv(t, nil, func(o *Options) {
		o.Volumes = vols
		o.Volumes[1].HighWaterPct = 1
	})
	env.e.pick = func(w []int64) int {
		// Only a and b qualify; they share a filesystem.
		if len(w) != 2 || w[0] != w[1] || w[0] <= 0 {
			t.Errorf("weights %v, want two equal positive free-space weights", w)
		}
		return 1
	}
	dir, err := env.e.placeMachine(testUUID)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "b", testUUID); dir != want {
		t.Errorf("placed in %s, want %s", dir, want)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("machine dir: %v, %v", fi, err)
	}

	// The existing link wins, even once the volume stops accepting.
	env.e.volumes[4].AcceptNew = false
	env.e.pick = func([]int64) int { t.Error("pick called for a placed machine"); return 0 }
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	dir2, err := env.e.placeMachine(testUUID)
	if err != nil || dir2 != dir {
		t.Errorf("second placement %q, %v; want %q (recreated)", dir2, err, dir)
	}
}

// TestPlacementHighWaterZero: a volume whose high-water mark is 0% takes
// no new machine on a filesystem that holds anything.
func TestPlacementHighWaterZero(t *testing.T) {
	env := newTestEnv(t, nil, func(o *Options) { o.Volumes[0].HighWaterPct = 0 })
	st, err := statVolume(env.e.volumes[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.usedPct() <= 0 {
		t.Skip("test filesystem is empty")
	}
	if _, err := env.e.placeMachine(testUUID); !errors.Is(err, ErrNoVolume) {
		t.Fatalf("got %v, want ErrNoVolume", err)
	}
}

func TestPlacementNoVolume(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, func(o *Options) { o.Volumes[0].AcceptNew = false })
	if _, err := env.e.placeMachine(testUUID); !errors.Is(err, ErrNoVolume) {
		t.Fatalf("got %v, want ErrNoVolume", err)
	}
	if _, err := os.Lstat(filepath.Join(env.varDir, "machines", testUUID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link created: %v", err)
	}
}

func TestPlacementUnmountedVolume(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	gone := filepath.Join(t.TempDir(), "unmounted", testUUID)
	if err := os.MkdirAll(filepath.Join(env.varDir, "machines"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(gone, filepath.Join(env.varDir, "machines", testUUID)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.placeMachine(testUUID); err == nil {
		t.Fatal("placed into a missing volume")
	}
	if _, err := os.Stat(filepath.Dir(gone)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("created the volume directory: %v", err)
	}
}

func TestMachineNameLink(t *testing.T) {
	t.Parallel()
	other := "11111111-2222-3333-4444-555555555555"
	tests := []struct {
		name     string
		existing func(machines string) error
		link     string
		want     string // readlink of machines/<link> afterwards
	}{
		{name: "new", link: "web1", want: testUUID},
		{name: "keep another machine's name link", link: "web1", want: other,
			existing: func(m string) error { return os.Symlink(other, filepath.Join(m, "web1")) }},
		{name: "never replace a machine link", link: "web1", want: "/vol/" + other,
			existing: func(m string) error { return os.Symlink("/vol/"+other, filepath.Join(m, "web1")) }},
		{name: "uuid-shaped name skipped", link: other, want: "",
			existing: nil},
		{name: "own uuid skipped", link: testUUID, want: "/vol/x/" + testUUID,
			existing: func(m string) error { return os.Symlink("/vol/x/"+testUUID, filepath.Join(m, testUUID)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, nil, nil)
			machines := filepath.Join(env.varDir, "machines")
			if err := os.MkdirAll(machines, 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.existing != nil {
				if err := tt.existing(machines); err != nil {
					t.Fatal(err)
				}
			}
			if err := env.e.linkMachineName(testUUID, tt.link); err != nil {
				t.Fatal(err)
			}
			got, _ := os.Readlink(filepath.Join(machines, tt.link))
			if got != tt.want {
				t.Errorf("link -> %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMachineLinkHijack: a name link sitting where a UUID link belongs is
// refused rather than followed into another machine's directory.
func TestMachineLinkHijack(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	machines := filepath.Join(env.varDir, "machines")
	if err := os.MkdirAll(machines, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("11111111-2222-3333-4444-555555555555", filepath.Join(machines, testUUID)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.placeMachine(testUUID); err == nil {
		t.Fatal("followed a name link")
	}
}

func TestSpace(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	st, err := statVolume(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		vols  []Volume
		total int64
		avail int64
	}{
		{name: "same filesystem counted once", vols: []Volume{{Path: a, AcceptNew: true, HighWaterPct: 100}, {Path: b, AcceptNew: true, HighWaterPct: 100}},
			total: st.totalMiB(), avail: st.availMiB()},
		{name: "closed contributes nothing available", vols: []Volume{{Path: a, AcceptNew: false}},
			total: st.totalMiB(), avail: 0},
		// accept_new_high_water_pct: 0 means 0%: a filesystem with
		// anything on it takes no new machines (it used to read as 80%).
		{name: "high water 0 on a used filesystem", vols: []Volume{{Path: a, AcceptNew: true, HighWaterPct: 0}},
			total: st.totalMiB(), avail: 0},
		// A missing volume is left out (the volume check logs it): the
		// others are still advertised.
		{name: "missing volume left out", vols: []Volume{{Name: "gone", Path: filepath.Join(root, "gone"), AcceptNew: true}, {Path: a, AcceptNew: true, HighWaterPct: 100}},
			total: st.totalMiB(), avail: st.availMiB()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total, avail := Space(t.TempDir(), tt.vols)
			// Other tests write to the same filesystem meanwhile: allow a
			// little drift in what is available.
			if total != tt.total || avail > tt.avail+64 || avail < tt.avail-64 {
				t.Errorf("Space = %d, %d; want %d, ~%d", total, avail, tt.total, tt.avail)
			}
		})
	}
}

func TestPickWeighted(t *testing.T) {
	t.Parallel()
	counts := make([]int, 3)
	for range 3000 {
		counts[pickWeighted([]int64{0, 1, 3})]++
	}
	if counts[0] != 0 || counts[1] < 500 || counts[2] < 1800 {
		t.Errorf("picks %v for weights 0, 1, 3", counts)
	}
	if i := pickWeighted([]int64{0, 0}); i < 0 || i > 1 {
		t.Errorf("all-zero weights picked %d", i)
	}
}
