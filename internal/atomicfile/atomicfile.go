package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// File is the pending new content of a path: a temporary file in the same
// directory, named "." + the base name + a random number, so that
// directory listings that skip dot files never see it.
type File struct {
	*renameio.PendingFile
	path string
}

// Create starts replacing path. The file gets mode perm exactly: neither
// the umask nor the mode of a file already at path changes it. Call
// Commit to put it in place; Cleanup (deferred) discards it otherwise.
func Create(path string, perm fs.FileMode) (*File, error) {
	// WithTempDir: renameio otherwise probes os.TempDir() on every call
	// and may stage the file there.
	f, err := renameio.NewPendingFile(path,
		renameio.WithTempDir(filepath.Dir(path)), renameio.WithStaticPermissions(perm))
	if err != nil {
		return nil, err
	}
	return &File{PendingFile: f, path: path}, nil
}

// Commit fsyncs the file, renames it over path and fsyncs the directory,
// so that the new content survives a crash once Commit returns.
func (f *File) Commit() error {
	if err := f.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(f.path))
}

// Cleanup closes and removes the temporary file unless Commit succeeded.
func (f *File) Cleanup() { _ = f.PendingFile.Cleanup() }

// WriteFile replaces path with data, mode perm, durably (see Commit).
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// WriteNew creates path with data, mode perm, durably, only if nothing is
// at path yet: the complete file is hard-linked into place, so of two
// processes racing, exactly one wins and the other gets an error matching
// fs.ErrExist; no one ever reads a partial file.
func WriteNew(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Cleanup() // removes the temporary name; the link stays
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs directory dir, making the renames, creations and removals
// in it durable. File systems that cannot fsync a directory are not an
// error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
