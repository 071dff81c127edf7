package config

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// checkLockDir refuses a lock_dir that others control. A local user who
// may remove or replace the lock files (group or other write without the
// sticky bit), or who owns the directory, can take a machine's lock and
// so stop its backups, or swap the file under a running one. A directory
// writable by all with the sticky bit (/run/lock) is allowed: serve warns
// of it at start, for the old code's locks are shared there while
// migrating. A lock_dir that does not exist yet is created 0700 at start.
func (r *reader) checkLockDir(dir string) {
	if dir == "" {
		return
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case errors.Is(err, fs.ErrPermission):
		return // serve may run as another user; it checks again
	case err != nil:
		r.fail("lock_dir", "%v", err)
		return
	case !fi.IsDir():
		r.fail("lock_dir", "%s is not a directory", dir)
		return
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		r.fail("lock_dir", "%s is writable by other users (mode %#o, no sticky bit): any of them can remove or replace a machine's lock file; make it 0700, or 1777 like /run/lock", dir, perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		r.fail("lock_dir", "%s is owned by uid %d, neither root nor this user (uid %d): its owner controls the lock files", dir, st.Uid, os.Geteuid())
	}
}
