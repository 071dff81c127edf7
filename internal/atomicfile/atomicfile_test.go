package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

func checkFile(t *testing.T, path, want string, wantMode fs.FileMode) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want {
		t.Errorf("%s holds %q, want %q", path, data, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != wantMode {
		t.Errorf("%s mode %v, want %v", path, got, wantMode)
	}
}

func TestWriteFile(t *testing.T) {
	// A umask that would strip group and other bits must not change the
	// mode asked for, and neither must the mode of the file replaced.
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	tests := []struct {
		name     string
		existing *fs.FileMode // nil: nothing at path yet
		perm     fs.FileMode
	}{
		{name: "new 0600", perm: 0o600},
		{name: "new 0644 under umask 077", perm: 0o644},
		{name: "replace 0644 with 0600", existing: ptr(fs.FileMode(0o644)), perm: 0o600},
		{name: "replace 0600 with 0644", existing: ptr(fs.FileMode(0o600)), perm: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.json")
			if tt.existing != nil {
				if err := os.WriteFile(path, []byte("old"), *tt.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, *tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte("new"), tt.perm); err != nil {
				t.Fatal(err)
			}
			checkFile(t, path, "new", tt.perm)
			if got, want := agenttest.DirNames(t, dir), []string{"f.json"}; !slices.Equal(got, want) {
				t.Errorf("directory holds %q, want %q", got, want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestWriteFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "f")
	if err := WriteFile(path, []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want an error matching fs.ErrNotExist", err)
	}
}

func TestCreateWithoutCommitKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "export.json")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("half of the new")); err != nil {
		t.Fatal(err)
	}
	f.Cleanup() // as a failed writer's deferred call does
	checkFile(t, path, "old", 0o600)
	if got, want := agenttest.DirNames(t, dir), []string{"export.json"}; !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
}

func TestCommitThenCleanup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "export.json")
	f, err := Create(path, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Cleanup()
	if _, err := f.Write([]byte("streamed")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Cleanup()
	checkFile(t, path, "streamed", 0o640)
}

func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := WriteNew(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteNew(path, []byte("second"), 0o644)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second WriteNew: got %v, want an error matching fs.ErrExist", err)
	}
	checkFile(t, path, "first", 0o600)
	if got, want := agenttest.DirNames(t, dir), []string{"key"}; !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want an error matching fs.ErrNotExist", err)
	}
}
