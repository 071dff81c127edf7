package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// TestLockDirOthersWritable: a lock_dir others may write to without the
// sticky bit, or that another user owns, is refused: its lock files can
// be taken or replaced. /run/lock's 1777 owned by root passes (serve warns).
func TestLockDirOthersWritable(t *testing.T) {
	const base = `"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}`
	tests := []struct {
		name  string
		mode  fs.FileMode
		owner int // -1: ours
		want  string
	}{
		{name: "private", mode: 0o700, owner: -1},
		{name: "readable", mode: 0o755, owner: -1},
		{name: "like /run/lock", mode: 0o777 | fs.ModeSticky, owner: -1},
		{name: "world-writable", mode: 0o777, owner: -1, want: "is writable by other users (mode 0777, no sticky bit)"},
		{name: "group-writable", mode: 0o770, owner: -1, want: "is writable by other users (mode 0770, no sticky bit)"},
		{name: "another user's", mode: 0o700, owner: 65534, want: "is owned by uid 65534, neither root nor this user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.owner >= 0 && os.Geteuid() != 0 {
				t.Skip("needs root to give the directory away")
			}
			dir := filepath.Join(t.TempDir(), "lock")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.owner >= 0 {
				if err := os.Chown(dir, tt.owner, tt.owner); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(writeConfig(t, map[string]string{"a.json": `{` + base + `, "lock_dir": "` + dir + `"}`}))
			if tt.want == "" {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.Contains(ce.Problems[0], "config.d/a.json: lock_dir: "+dir+" "+tt.want) {
				t.Errorf("got %v, want one problem: lock_dir: %s %s", err, dir, tt.want)
			}
			if fi, err := os.Stat(dir); err != nil || fi.Mode()&(fs.ModePerm|fs.ModeSticky) != tt.mode {
				t.Errorf("lock_dir changed: %v %v", fi.Mode(), err)
			}
		})
	}
}
