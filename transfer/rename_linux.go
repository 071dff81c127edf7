package transfer

import "golang.org/x/sys/unix"

// renameNoReplace renames old to new, failing if new exists.
func renameNoReplace(old, new string) error {
	return unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
}
