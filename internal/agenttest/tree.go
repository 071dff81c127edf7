//go:build unix

package agenttest

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TreeEntry is one file of a tree as tests compare trees across copies:
// everything but the inode number, which is replaced by the first path
// (in walk order) holding it, so that hard links compare equal.
type TreeEntry struct {
	Mode           fs.FileMode
	UID, GID       uint32
	MTime          int64
	Data, Link     string
	Rdev           uint64
	FirstWithInode string
}

// Tree describes every file under dir by its path relative to dir;
// directory mtimes are included, except dir's own (it moves with what is
// added to it).
func Tree(t testing.TB, dir string) map[string]TreeEntry {
	t.Helper()
	out := map[string]TreeEntry{}
	first := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := TreeEntry{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, MTime: fi.ModTime().UnixNano(), Rdev: uint64(st.Rdev)}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Data = string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Link, _ = os.Readlink(p)
		}
		if !fi.IsDir() {
			ino := uint64(st.Ino)
			if _, ok := first[ino]; !ok {
				first[ino] = rel
			}
			e.FirstWithInode = first[ino]
		}
		if rel == "." {
			e.MTime = 0
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
