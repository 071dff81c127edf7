package config

import (
	"testing"

	"github.com/turku-backup/turku-storage/internal/seedconfig"
)

// TestLockDirDefaultPrivate: without lock_dir the locks live in a directory
// of our own under var_dir, not in /run/lock where any local user can
// create (and lock) the next machine's lock file first.
func TestLockDirDefaultPrivate(t *testing.T) {
	c, err := Load(writeConfig(t, map[string]string{"config.json": seedconfig.README}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "/var/lib/turku-storage/lock"; c.LockDir != want {
		t.Errorf("lock_dir defaults to %q, want %q", c.LockDir, want)
	}
}
