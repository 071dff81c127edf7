//go:build !linux

package backup

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

const nofollow = unix.O_NOFOLLOW

// tryLock takes an exclusive flock without waiting. Outside Linux there
// are no OFD locks; flock still excludes other sessions of this process.
func tryLock(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return ErrBusy
	}
	return err
}

// unlock releases tryLock's lock at once, whoever else holds the file.
func unlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// blockSize is the unit of Statfs_t's block counts.
func blockSize(sf *unix.Statfs_t) int64 { return int64(sf.Bsize) }

// readOnlyFS reports whether the filesystem is mounted read-only; outside
// Linux it is left to access(2), which answers EROFS.
func readOnlyFS(*unix.Statfs_t) bool { return false }
