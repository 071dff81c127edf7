package backup

import (
	"io/fs"
	"syscall"
)

// stampOf is what the index compares a directory by: its change time
// moves with every entry created, renamed or removed in it and cannot be
// set back (touch and rsync --times set only the modification time); the
// inode tells a directory made again under the same name.
func stampOf(fi fs.FileInfo) dirStamp {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return dirStamp{Mtime: fi.ModTime().UnixNano()}
	}
	return dirStamp{Mtime: fi.ModTime().UnixNano(), Ctime: st.Ctim.Nano(), Ino: st.Ino}
}
