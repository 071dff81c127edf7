package coordinator

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStoreFilesPrivate: the database holds every machine's secret hash
// and every storage unit's; it and its WAL files are 0600, whether new or
// left readable by an older install.
func TestStoreFilesPrivate(t *testing.T) {
	for _, existing := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "c.db")
		if existing {
			s := openTestStore(t, path)
			s.Close()
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if err := os.Chmod(p, 0o644); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
			}
		}
		s := openTestStore(t, path)
		if _, err := s.db.Exec(`INSERT INTO schema_version SELECT version FROM schema_version WHERE 0`); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("existing=%v: %s mode %#o, want 0600", existing, filepath.Base(p), got)
			}
		}
		s.Close()
	}
}
