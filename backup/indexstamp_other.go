//go:build !linux

package backup

import "io/fs"

// stampOf is what the index compares a directory by; elsewhere than on
// Linux only its modification time.
func stampOf(fi fs.FileInfo) dirStamp {
	return dirStamp{Mtime: fi.ModTime().UnixNano(), Ctime: fi.ModTime().UnixNano()}
}
