package transfer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// openedDir is one directory of the tree being received, created by this
// receive and held open until the stream leaves it.
type openedDir struct {
	name  string // its entry name in the stream
	fd    int
	mode  uint32
	mtime unix.Timespec
}

// extractor writes a stream's entries. The stream is depth first: an
// entry's directory must be the last directory sent that is still open
// (an ancestor of everything since), so every entry is created relative
// to a descriptor of a directory this receive made, by one name
// component, with O_EXCL / O_NOFOLLOW semantics: nothing that exists is
// ever written through or replaced.
type extractor struct {
	uuid string
	root int // the temporary machine directory
	// rootPath is its path.
	rootPath string
	root0    bool
	stack    []openedDir
	buf      []byte
	// lastLink is the directory of the last hard link's target, open
	// as lastLinkFd (-1: none).
	lastLink   string
	lastLinkFd int
	asRoot     bool // running as root: owners and devices are kept
	// uid and gid are what a file created here gets: our own, -1 when
	// the machine directory is setgid (its group would be inherited).
	uid, gid int
	// umask is the process's (0o777 when it cannot be read: every
	// file is then chmodded).
	umask uint32
	log   *slog.Logger
	stats Stats
}

func (x *extractor) extract(ctx context.Context, tr *tar.Reader) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			if len(x.stack) == 0 {
				return fmt.Errorf("%w: no machine directory", ErrCorrupt)
			}
			return nil
		}
		if err != nil {
			return corrupt(err)
		}
		if err := x.entry(tr, h); err != nil {
			return err
		}
	}
}

func (x *extractor) entry(tr *tar.Reader, h *tar.Header) error {
	name := h.Name
	if h.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	parts, err := splitName(name, x.uuid)
	if err != nil {
		return fmt.Errorf("refused entry: %w", err)
	}
	mtime := unix.NsecToTimespec(h.ModTime.UnixNano())
	mode := uint32(h.Mode & 0o7777)
	if len(parts) == 1 {
		if h.Typeflag != tar.TypeDir || len(x.stack) > 0 || !x.root0 {
			return fmt.Errorf("refused entry %q: the machine directory comes once, first", name)
		}
		x.root0 = false
		x.stats.Dirs++
		if err := x.chown(x.root, "", h); err != nil {
			return err
		}
		x.stack = append(x.stack, openedDir{name: name, fd: x.root, mode: mode, mtime: mtime})
		return nil
	}
	parent, base := strings.Join(parts[:len(parts)-1], "/"), parts[len(parts)-1]
	for len(x.stack) > 0 && x.stack[len(x.stack)-1].name != parent {
		if err := x.pop(); err != nil {
			return err
		}
	}
	if len(x.stack) == 0 {
		return fmt.Errorf("refused entry %q: not in the directory sent before it (out of order, or under something not a directory)", name)
	}
	pfd := x.stack[len(x.stack)-1].fd
	fail := func(err error) error { return fmt.Errorf("entry %q: %w", name, err) }
	switch h.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return fail(err)
		}
		fd, err := openDir(pfd, base)
		if err != nil {
			return fail(err)
		}
		x.stack = append(x.stack, openedDir{name: name, fd: fd, mode: mode, mtime: mtime})
		x.stats.Dirs++
		return x.chown(fd, name, h)
	case tar.TypeReg:
		// Created with its permissions at once (the fd is writable
		// whatever they say); chmod only where the umask or a chown
		// would have taken bits away.
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode&0o777)
		if err != nil {
			return fail(err)
		}
		defer unix.Close(fd)
		var n int64
		for {
			k, rerr := tr.Read(x.buf)
			if k > 0 {
				if err := writeAll(fd, x.buf[:k]); err != nil {
					return fail(err)
				}
				n += int64(k)
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return corrupt(rerr)
			}
		}
		if err := x.chown(fd, name, h); err != nil {
			return err
		}
		if mode&^x.umask != mode || mode&0o7000 != 0 {
			if err := unix.Fchmod(fd, mode); err != nil {
				return fail(err)
			}
		}
		// Only this receive writes in its directories: base is the file
		// just written.
		if err := unix.UtimesNanoAt(pfd, base, times(mtime), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fail(err)
		}
		x.stats.Files++
		x.stats.Bytes += n
		return nil
	case tar.TypeSymlink:
		if h.Linkname == "" || strings.ContainsRune(h.Linkname, 0) {
			return fmt.Errorf("refused entry %q: bad symlink target", name)
		}
		if err := unix.Symlinkat(h.Linkname, pfd, base); err != nil {
			return fail(err)
		}
		x.stats.Symlinks++
		return x.finishAt(pfd, base, name, h, mtime, false)
	case tar.TypeLink:
		tparts, err := splitName(h.Linkname, x.uuid)
		if err != nil || len(tparts) < 2 {
			return fmt.Errorf("refused hard link %q: target %v", name, cond(err != nil, err, errors.New("is the machine directory")))
		}
		tfd, err := x.linkDir(tparts[:len(tparts)-1])
		if err != nil {
			return fmt.Errorf("refused hard link %q to %q: %w", name, h.Linkname, err)
		}
		// No AT_SYMLINK_FOLLOW: a symlink target is linked itself.
		if err := unix.Linkat(tfd, tparts[len(tparts)-1], pfd, base, 0); err != nil {
			return fmt.Errorf("refused hard link %q to %q: %w", name, h.Linkname, err)
		}
		x.stats.HardLinks++
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
		if kind != unix.S_IFIFO && !x.asRoot {
			x.stats.Skipped++
			x.log.Warn("device file not created: not root", "file", name)
			return nil
		}
		dev := unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
		if err := mknodAt(pfd, base, kind|0o600, dev); err != nil {
			return fail(err)
		}
		x.stats.Devices++
		return x.finishAt(pfd, base, name, h, mtime, true)
	default:
		return fmt.Errorf("refused entry %q: type %q is not part of a transfer stream", name, h.Typeflag)
	}
}

func cond[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// finishAt sets the owner, mode (chmod: not for symlinks) and mtime of
// pfd/base, never following a symlink.
func (x *extractor) finishAt(pfd int, base, name string, h *tar.Header, mtime unix.Timespec, chmod bool) error {
	if err := unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil && (x.asRoot || !errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("entry %q: chown: %w", name, err)
	}
	if chmod {
		// Not a symlink (we made it), so fchmodat follows nothing.
		if err := unix.Fchmodat(pfd, base, uint32(h.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("entry %q: chmod: %w", name, err)
		}
	}
	if err := unix.UtimesNanoAt(pfd, base, times(mtime), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("entry %q: set time: %w", name, err)
	}
	return nil
}

func (x *extractor) chown(fd int, name string, h *tar.Header) error {
	if h.Uid == x.uid && h.Gid == x.gid {
		return nil // what a file we create gets
	}
	if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil && (x.asRoot || !errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("entry %q: chown: %w", name, err)
	}
	return nil
}

// linkDir returns a descriptor of the directory parts (from the machine
// directory's name on) for a hard link's target: one still open, or the
// one the last link used (links come in runs into one directory of the
// previous snapshot), or one opened now. It stays x's to close.
func (x *extractor) linkDir(parts []string) (int, error) {
	path := strings.Join(parts, "/")
	for i := len(x.stack) - 1; i >= 0; i-- {
		if x.stack[i].name == path {
			return x.stack[i].fd, nil
		}
	}
	if x.lastLinkFd >= 0 && x.lastLink == path {
		return x.lastLinkFd, nil
	}
	fd, err := x.walk(parts[1:])
	if err != nil {
		return -1, err
	}
	if x.lastLinkFd >= 0 {
		unix.Close(x.lastLinkFd)
	}
	x.lastLink, x.lastLinkFd = path, fd
	return fd, nil
}

// walk opens the directory at the components below the machine
// directory, refusing a symlink at any step.
func (x *extractor) walk(parts []string) (int, error) {
	fd, err := unix.Dup(x.root)
	if err != nil {
		return -1, err
	}
	for _, p := range parts {
		next, err := openDir(fd, p)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// pop leaves the innermost open directory: its mode and time are set
// now that nothing more is written in it.
func (x *extractor) pop() error {
	d := x.stack[len(x.stack)-1]
	x.stack = x.stack[:len(x.stack)-1]
	err := unix.Fchmod(d.fd, d.mode)
	if err == nil {
		// The time by name, relative to the parent still open (the
		// machine directory's by its temporary path).
		dirfd, base := unix.AT_FDCWD, x.rootPath
		if len(x.stack) > 0 {
			dirfd, base = x.stack[len(x.stack)-1].fd, d.name[strings.LastIndexByte(d.name, '/')+1:]
		}
		err = unix.UtimesNanoAt(dirfd, base, times(d.mtime), unix.AT_SYMLINK_NOFOLLOW)
	}
	if d.fd != x.root {
		unix.Close(d.fd)
	}
	if err != nil {
		return fmt.Errorf("directory %q: %w", d.name, err)
	}
	return nil
}

// finish leaves every directory, the machine directory last.
func (x *extractor) finish() error {
	for len(x.stack) > 0 {
		if err := x.pop(); err != nil {
			return err
		}
	}
	return nil
}

// closeAll closes what is still open, the machine directory included.
func (x *extractor) closeAll() {
	for _, d := range x.stack {
		if d.fd != x.root {
			unix.Close(d.fd)
		}
	}
	x.stack = nil
	if x.lastLinkFd >= 0 {
		unix.Close(x.lastLinkFd)
	}
	unix.Close(x.root)
}

// processUmask reads the umask from /proc/self/status (Linux 4.7+)
// without changing it; 0o777 when it cannot.
func processUmask() uint32 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m)
			}
		}
	}
	return 0o777
}
