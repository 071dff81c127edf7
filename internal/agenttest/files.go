package agenttest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// WriteTree creates files (slash-separated relative path → content) under
// dir, with their parent directories: the data an agent's source holds.
func WriteTree[T string | []byte](t testing.TB, dir string, files map[string]T) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Script writes an executable shell script (body after "#!/bin/sh") in a
// temporary directory and returns its path: a stand-in for rsync that
// prints what a test needs, fails or misbehaves on cue.
func Script(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake-rsync")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// Inode returns the inode number of path itself (a link is not
// followed), for tests that check which files are hard links of which.
func Inode(t testing.TB, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// DirNames lists the names in dir, sorted, so a test can see what a step
// left there (and that no temporary file is left).
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
