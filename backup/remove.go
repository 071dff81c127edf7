package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// removeTree removes path and everything below it, like "rm -rf". A
// snapshot is a huge tree of hard links, so removal is all unlink calls:
// each directory is listed once (file types come from getdents, no stat),
// its files are unlinked relative to the directory's descriptor, and
// sibling subdirectories are removed by several goroutines at once. The
// old code ran "rm -rf" because shutil.rmtree was slow; BenchmarkRemoveTree
// compares the two.
func removeTree(path string) error {
	_, err := removeTreeOpts(path, false)
	return err
}

// removeTreeMeasured is removeTree that also returns the bytes it freed:
// the sizes of the regular files whose last link it removed (a link count
// of 1 just before the unlink). It removes one directory at a time, so
// that two links to one file in different directories of the tree can
// never both see a count of 2 and the file go uncounted.
func removeTreeMeasured(path string) (int64, error) {
	return removeTreeOpts(path, true)
}

func removeTreeOpts(path string, measure bool) (int64, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !fi.IsDir() {
		var freed int64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && measure && fi.Mode().IsRegular() && st.Nlink == 1 {
			freed = fi.Size()
		}
		if err := os.Remove(path); err != nil {
			return 0, err
		}
		return freed, nil
	}
	r := &remover{measure: measure}
	if !measure {
		r.slots = make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	}
	r.dir(path)
	return r.freed.Load(), errors.Join(r.errs...)
}

// remover carries one removeTree call. Errors are collected, not fatal:
// like rm -rf it removes what it can.
type remover struct {
	slots   chan struct{} // bounds extra goroutines (and so open descriptors); nil: none
	measure bool          // count freed bytes
	freed   atomic.Int64
	mu      sync.Mutex // guards errs
	errs    []error
}

func (r *remover) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 10 {
		r.errs = append(r.errs, err)
	}
}

// dir empties and removes the directory path.
func (r *remover) dir(path string) {
	subdirs := r.unlinkFiles(path)
	var wg sync.WaitGroup
	for _, sub := range subdirs {
		select {
		case r.slots <- struct{}{}:
			wg.Go(func() {
				defer func() { <-r.slots }()
				r.dir(sub)
			})
		default:
			r.dir(sub)
		}
	}
	wg.Wait()
	if err := unix.Rmdir(path); err != nil && !errors.Is(err, unix.ENOENT) {
		r.fail(&fs.PathError{Op: "rmdir", Path: path, Err: err})
	}
}

// unlinkFiles unlinks every non-directory in path and returns the
// subdirectories. The descriptor is closed before recursing, so deep
// trees do not pile up open files.
func (r *remover) unlinkFiles(path string) []string {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		r.fail(&fs.PathError{Op: "open", Path: path, Err: err})
		return nil
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var subdirs []string
	madeWritable := false
	for {
		entries, err := f.ReadDir(4096)
		for _, e := range entries {
			if e.IsDir() {
				subdirs = append(subdirs, filepath.Join(path, e.Name()))
				continue
			}
			var st unix.Stat_t
			measured := r.measure && e.Type().IsRegular() && unix.Fstatat(fd, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW) == nil
			err := unix.Unlinkat(fd, e.Name(), 0)
			if (err == unix.EACCES || err == unix.EPERM) && !madeWritable {
				// A read-only directory copied from the source: make it
				// writable like rm -rf would need, once.
				madeWritable = true
				if unix.Fchmod(fd, 0o700) == nil {
					err = unix.Unlinkat(fd, e.Name(), 0)
				}
			}
			if err == unix.EISDIR {
				subdirs = append(subdirs, filepath.Join(path, e.Name()))
				continue
			}
			if err == nil && measured && st.Nlink == 1 {
				r.freed.Add(st.Size)
			}
			if err != nil && err != unix.ENOENT {
				r.fail(&fs.PathError{Op: "unlink", Path: filepath.Join(path, e.Name()), Err: err})
			}
		}
		if err != nil {
			break
		}
	}
	if !madeWritable && len(subdirs) > 0 {
		// rmdir of a subdirectory needs write permission here as well.
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&0o200 == 0 {
			_ = unix.Fchmod(fd, 0o700)
		}
	}
	return subdirs
}

// deleteSnapshot removes a snapshot the way a crash can resume: rename to
// _delete-<dir>, remove the .json, remove the tree. It returns the bytes
// freed (see removeTreeMeasured), also when it fails part way.
func deleteSnapshot(snapDir string, s Snapshot) (int64, error) {
	name := s.dirName()
	doomed := filepath.Join(snapDir, deletePrefix+name)
	if err := os.Rename(s.Path, doomed); err != nil {
		return 0, fmt.Errorf("rename snapshot %s for deletion: %w", name, err)
	}
	if err := os.Remove(filepath.Join(snapDir, name+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("remove %s.json: %w", name, err)
	}
	freed, err := removeTreeMeasured(doomed)
	if err != nil {
		return freed, fmt.Errorf("remove snapshot %s: %w", name, err)
	}
	return freed, nil
}

// finishDeletes removes "_delete-*" leftovers of deletions a crash
// interrupted, with any .json they left behind, and returns their names.
func finishDeletes(snapDir string) ([]string, error) {
	entries, err := os.ReadDir(snapDir)
	if err != nil {
		return nil, err
	}
	var done []string
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), deletePrefix) {
			continue
		}
		orig := strings.TrimPrefix(e.Name(), deletePrefix)
		if _, err := os.Lstat(filepath.Join(snapDir, orig)); errors.Is(err, fs.ErrNotExist) {
			if err := os.Remove(filepath.Join(snapDir, orig+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		if err := removeTree(filepath.Join(snapDir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, orig)
	}
	return done, errors.Join(errs...)
}
