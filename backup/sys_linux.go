package backup

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

const nofollow = unix.O_NOFOLLOW

// tryLock takes a write lock on the whole file without waiting, using an
// open file description lock (F_OFD_SETLK, Linux 3.15+), which conflicts
// with classic POSIX locks such as Python's fcntl.lockf.
func tryLock(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return ErrBusy
	}
	return err
}

// unlock releases tryLock's lock at once. Closing the file alone is not
// enough: a child forked by another goroutine holds the open file
// description until it execs, and with it the lock.
func unlock(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: 0, Len: 0}
	return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
}

// blockSize is the unit of Statfs_t's block counts (statvfs f_frsize).
func blockSize(sf *unix.Statfs_t) int64 {
	if sf.Frsize > 0 {
		return sf.Frsize
	}
	return sf.Bsize
}

// readOnlyFS reports whether the filesystem is mounted read-only
// (statfs f_flags ST_RDONLY, Linux 2.6.36+).
func readOnlyFS(sf *unix.Statfs_t) bool { return sf.Flags&unix.ST_RDONLY != 0 }
