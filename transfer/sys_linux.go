package transfer

import "golang.org/x/sys/unix"

// renameNoReplace renames old to new, failing if new exists.
func renameNoReplace(old, new string) error {
	return unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
}

// syncFS flushes the filesystem holding fd (syncfs(2)).
func syncFS(fd int) error { return unix.Syncfs(fd) }

// mknodAt creates a device file or FIFO named base in dirfd.
func mknodAt(dirfd int, base string, mode uint32, dev uint64) error {
	return unix.Mknodat(dirfd, base, mode, int(dev))
}

// times is the (atime, mtime) pair that sets mtime and leaves atime.
func times(mtime unix.Timespec) []unix.Timespec {
	return []unix.Timespec{{Sec: 0, Nsec: unix.UTIME_OMIT}, mtime}
}
