package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// DefaultLockDirName is the lock directory under VAR_DIR used when
// lock_dir is not set: private to the storage unit's user, unlike
// /run/lock, where any local user could create and lock the next
// machine's lock file first.
const DefaultLockDirName = "lock"

// SecureDirs makes the storage unit's directories private, as run at
// start: VAR_DIR, VAR_DIR/machines and every machine directory lose all
// group and other permissions. Machine directories migrated from the old
// storage were often 0755, and snapshots hold whatever agents sent,
// setuid binaries and device nodes included. Each change is logged; a
// lock directory other users may write to is warned about. Only
// directories are changed, never followed through a symlink.
func (e *Engine) SecureDirs() error {
	var errs []error
	for _, d := range []string{e.varDir, e.machinesDir()} {
		errs = append(errs, e.privateDir(d))
	}
	entries, err := os.ReadDir(e.machinesDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, ent := range entries {
		if !IsUUID(ent.Name()) {
			continue // name links point at a UUID link, not a directory
		}
		dir, err := e.readMachineLink(ent.Name())
		if err != nil {
			e.log.Warn("machine link unreadable, mode not checked", "machine", ent.Name(), "err", err)
			continue
		}
		errs = append(errs, e.privateDir(dir))
	}
	if fi, err := os.Stat(e.lockDir); err == nil && fi.Mode().Perm()&0o022 != 0 {
		e.log.Warn("lock_dir is writable by other local users, who can lock a machine's lock file and stop its backups; share it with the old storage only while migrating",
			"dir", e.lockDir, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
	}
	return errors.Join(errs...)
}

// privateDir removes group and other permissions from dir, a directory
// (not a symlink to one); a missing dir is left alone.
func (e *Engine) privateDir(dir string) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.IsDir():
		e.log.Warn("not a directory, mode not changed", "dir", dir, "type", fi.Mode().Type().String())
		return nil
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	mode := fi.Mode()&(fs.ModeSetgid|fs.ModeSticky) | perm&^0o077
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("make %s private: %w", dir, err)
	}
	e.log.Info("directory mode tightened", "dir", dir, "from", fmt.Sprintf("%#o", perm), "to", fmt.Sprintf("%#o", mode.Perm()))
	return nil
}
