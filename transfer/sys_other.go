//go:build !linux

package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames old to new, failing if new exists (checked
// first: without renameat2 there is a window, held shut here only by
// the machine's lock).
func renameNoReplace(old, new string) error {
	if _, err := os.Lstat(new); err == nil {
		return fmt.Errorf("%s: %w", new, fs.ErrExist)
	}
	return os.Rename(old, new)
}

// syncFS flushes every filesystem: there is no syncfs(2) here.
func syncFS(int) error {
	unix.Sync()
	return nil
}

// mknodAt: device files are received on Linux only.
func mknodAt(int, string, uint32, uint64) error {
	return errors.New("device files are received on Linux only")
}

// times is the (atime, mtime) pair: both mtime, without UTIME_OMIT.
func times(mtime unix.Timespec) []unix.Timespec { return []unix.Timespec{mtime, mtime} }
