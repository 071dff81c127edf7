package backup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// makeBaseTree builds dirs×files small files under base, in nested
// directories.
func makeBaseTree(tb testing.TB, base string, dirs, files int) {
	tb.Helper()
	for d := range dirs {
		dir := filepath.Join(base, fmt.Sprintf("d%03d", d%17), fmt.Sprintf("e%04d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for f := range files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", f)), []byte("x"), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// linkCopy makes dst a copy of src whose files are hard links, the way a
// link-dest snapshot shares files with its base.
func linkCopy(tb testing.TB, src, dst string) {
	tb.Helper()
	if out, err := exec.Command("cp", "-al", src, dst).CombinedOutput(); err != nil {
		tb.Fatalf("cp -al: %v\n%s", err, out)
	}
}

func TestRemoveTree(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	base := filepath.Join(root, "base")
	makeBaseTree(t, base, 40, 20)
	copyDir := filepath.Join(root, "snap")
	linkCopy(t, base, copyDir)
	// Unusual but legal contents: a read-only directory, a symlink that
	// must not be followed, an empty directory, a FIFO.
	ro := filepath.Join(copyDir, "d000", "readonly")
	if err := os.MkdirAll(filepath.Join(ro, "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "inner", "f"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(ro, "inner"), 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(base, filepath.Join(copyDir, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(copyDir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("mkfifo", filepath.Join(copyDir, "fifo")).Run(); err != nil {
		t.Fatal(err)
	}

	if err := removeTree(copyDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(copyDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tree still there: %v", err)
	}
	if n := len(listTree(t, base)); n != 40+17+40*20 {
		t.Errorf("base tree has %d entries after removing a linked copy; the symlink was followed?", n)
	}
	if err := removeTree(copyDir); err != nil {
		t.Errorf("removing a missing tree: %v", err)
	}
}

func TestFinishDeletes(t *testing.T) {
	t.Parallel()
	snapDir := t.TempDir()
	makeBaseTree(t, filepath.Join(snapDir, "_delete-etc_20261101-030000_dead"), 3, 3)
	for _, p := range []string{"etc_20261101-030000_dead.json", "etc_20261102-030000_beef.json"} {
		if err := os.WriteFile(filepath.Join(snapDir, p), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(snapDir, "etc_20261102-030000_beef"), 0o755); err != nil {
		t.Fatal(err)
	}
	done, err := finishDeletes(snapDir)
	if err != nil || len(done) != 1 || done[0] != "etc_20261101-030000_dead" {
		t.Fatalf("finishDeletes = %q, %v", done, err)
	}
	got := listTree(t, snapDir)
	want := []string{"etc_20261102-030000_beef", "etc_20261102-030000_beef.json"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("left %q, want %q", got, want)
	}
}

// BenchmarkRemoveTree removes identical hard-linked snapshot trees with
// removeTree and with "rm -rf" in the same run and reports both times and
// their ratio (ours/rm; below 1 is faster than rm).
//
//	go test -run '^$' -bench RemoveTree -benchtime 5x ./backup/
func BenchmarkRemoveTree(b *testing.B) {
	benchRemovals(b, "ours", removeTree, "rm", func(dir string) error {
		if out, err := exec.Command("rm", "-rf", dir).CombinedOutput(); err != nil {
			return fmt.Errorf("rm -rf: %v\n%s", err, out)
		}
		return nil
	})
}

// BenchmarkRemoveTreeMeasured compares a retention removal, which counts
// the bytes it frees one directory at a time, with the plain parallel
// removal, on a snapshot whose files are all still linked elsewhere.
func BenchmarkRemoveTreeMeasured(b *testing.B) {
	benchRemovals(b, "measured", func(dir string) error {
		_, err := removeTreeMeasured(dir)
		return err
	}, "plain", removeTree)
}

// benchRemovals times removeA and removeB on two hard-linked copies of the
// same tree in each iteration and reports their times as NAME-ms/op and
// their ratio as nameA/nameB.
func benchRemovals(b *testing.B, nameA string, removeA func(string) error, nameB string, removeB func(string) error) {
	root := b.TempDir()
	base := filepath.Join(root, "base")
	makeBaseTree(b, base, 400, 100) // 40,000 files in 400 directories
	var timeA, timeB time.Duration
	timed := func(remove func(string) error, dir string, total *time.Duration) func() {
		return func() {
			start := time.Now()
			if err := remove(dir); err != nil {
				b.Fatal(err)
			}
			*total += time.Since(start)
		}
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		a, c := filepath.Join(root, fmt.Sprintf("a%d", i)), filepath.Join(root, fmt.Sprintf("c%d", i))
		linkCopy(b, base, a)
		linkCopy(b, base, c)
		// Alternate who goes first so neither always meets a warmer cache.
		first, second := timed(removeA, a, &timeA), timed(removeB, c, &timeB)
		if i%2 == 1 {
			first, second = second, first
		}
		b.StartTimer()
		first()
		second()
	}
	b.ReportMetric(float64(timeA.Milliseconds())/float64(b.N), nameA+"-ms/op")
	b.ReportMetric(float64(timeB.Milliseconds())/float64(b.N), nameB+"-ms/op")
	b.ReportMetric(timeA.Seconds()/timeB.Seconds(), nameA+"/"+nameB)
}
