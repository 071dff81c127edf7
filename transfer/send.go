package transfer

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/turku-backup/turku-storage/backup"
)

// DefaultLinkCache is how many files Send remembers for hard links that
// are not between the same path of consecutive snapshots (links inside
// one snapshot, made with preserve_hard_links).
const DefaultLinkCache = 4096

// SendOptions configures Send. cmd builds it.
type SendOptions struct {
	// Machines is this storage unit's machines (the lock, the links).
	Machines *backup.Machines
	// Machine is the UUID to send.
	Machine string
	// Storage is this unit's name, recorded in the header.
	Storage string
	// LinkCache bounds the remembered files for other hard links; 0
	// means DefaultLinkCache.
	LinkCache int
	// Logger receives warnings (files that cannot be sent); nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats counts what a stream held.
type Stats struct {
	Dirs      int64 `json:"dirs"`
	Files     int64 `json:"files"`
	HardLinks int64 `json:"hard_links"`
	Symlinks  int64 `json:"symlinks"`
	Devices   int64 `json:"devices"`
	// Bytes is the regular files' data, each file once.
	Bytes int64 `json:"bytes"`
	// Skipped counts entries left out: sockets (tar has no type for
	// them) when sending; device files when receiving without root.
	Skipped int64 `json:"skipped"`
}

// Sent is what Send wrote.
type Sent struct {
	Header Header
	Stats  Stats
	// StreamBytes is the stream's length, trailer included.
	StreamBytes int64
}

// Send writes the machine's directory as a transfer stream to w, holding
// the machine's lock (no backup of it runs meanwhile). Hard links are
// found without a map of every file: a file is compared, by device and
// inode, with the same path in the tree sent before it in the same
// source (the previous snapshot: --link-dest links only the same path),
// and only files whose link count is not explained that way are kept, in
// a cache of at most LinkCache entries. A link beyond the cache is sent
// as a copy.
func Send(ctx context.Context, w io.Writer, opts SendOptions) (Sent, error) {
	if opts.LinkCache <= 0 {
		opts.LinkCache = DefaultLinkCache
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	uuid := opts.Machine
	if !backup.IsUUID(uuid) {
		return Sent{}, fmt.Errorf("machine %q: not a UUID", uuid)
	}
	unlock, err := opts.Machines.Lock(uuid)
	if err != nil {
		return Sent{}, fmt.Errorf("machine %s: %w", uuid, err)
	}
	defer unlock()
	dir, exists, err := opts.Machines.Link(uuid)
	if err != nil {
		return Sent{}, err
	}
	if !exists {
		return Sent{}, fmt.Errorf("machine %s has no data on this storage unit", uuid)
	}
	names, err := opts.Machines.Names(uuid)
	if err != nil {
		return Sent{}, err
	}
	hdr := Header{Format: formatName, Version: formatVersion, Machine: uuid, Names: names, Storage: opts.Storage, Created: opts.Now().UTC()}
	if hdr.Names == nil {
		hdr.Names = []string{}
	}

	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	sum := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(bw, sum))
	s := &sender{ctx: ctx, tw: tw, cache: newLinkCache(opts.LinkCache), log: opts.Logger, buf: make([]byte, 256<<10)}
	js, _ := json.MarshalIndent(hdr, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: headerName, Size: int64(len(js)), Mode: 0o644, ModTime: hdr.Created, Format: tar.FormatPAX}); err != nil {
		return Sent{}, err
	}
	if _, err := tw.Write(js); err != nil {
		return Sent{}, err
	}
	if err := s.machine(dir, uuid); err != nil {
		return Sent{}, fmt.Errorf("machine %s: %w", uuid, err)
	}
	if err := tw.Close(); err != nil {
		return Sent{}, err
	}
	if _, err := bw.Write(trailer(sum.Sum(nil))); err != nil {
		return Sent{}, err
	}
	if err := bw.Flush(); err != nil {
		return Sent{}, err
	}
	return Sent{Header: hdr, Stats: s.stats, StreamBytes: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// devIno identifies a file.
type devIno struct{ dev, ino uint64 }

// linkCache remembers up to max files by identity, forgetting the oldest
// first.
type linkCache struct {
	m     map[devIno]string
	order []devIno
	next  int
}

func newLinkCache(max int) *linkCache {
	return &linkCache{m: make(map[devIno]string, max), order: make([]devIno, 0, max)}
}

func (c *linkCache) get(k devIno) (string, bool) { n, ok := c.m[k]; return n, ok }

func (c *linkCache) put(k devIno, name string) {
	if _, ok := c.m[k]; ok {
		return
	}
	if len(c.order) < cap(c.order) {
		c.order = append(c.order, k)
	} else {
		delete(c.m, c.order[c.next])
		c.order[c.next] = k
		c.next = (c.next + 1) % len(c.order)
	}
	c.m[k] = name
}

// peer is a directory of a neighbouring tree of the same source, open,
// with its name in the stream.
type peer struct {
	fd   int
	name string
}

func (p *peer) close() {
	if p != nil {
		unix.Close(p.fd)
	}
}

// sub opens the peer's subdirectory name, or returns nil.
func (p *peer) sub(name string) *peer {
	if p == nil {
		return nil
	}
	fd, err := openDir(p.fd, name)
	if err != nil {
		return nil
	}
	return &peer{fd: fd, name: p.name + "/" + name}
}

// same reports whether the peer's entry name is the file st.
func (p *peer) same(name string, st *unix.Stat_t) bool {
	if p == nil {
		return false
	}
	var o unix.Stat_t
	return unix.Fstatat(p.fd, name, &o, unix.AT_SYMLINK_NOFOLLOW) == nil && o.Dev == st.Dev && o.Ino == st.Ino
}

type sender struct {
	ctx   context.Context
	tw    *tar.Writer
	cache *linkCache
	log   *slog.Logger
	buf   []byte
	stats Stats
}

func openDir(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// readNames lists a directory whole; used only for the machine directory
// and a source's snapshot directory, which hold few entries.
func readNames(fd int, path string) ([]string, error) {
	dfd, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dfd), path)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// machine sends the machine directory: each source's snapshot directory
// followed by its working tree (which --link-dest fills from the newest
// snapshot), then whatever else lies there.
func (s *sender) machine(dir, uuid string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if err := s.header(uuid, &st, ""); err != nil {
		return err
	}
	names, err := readNames(fd, dir)
	if err != nil {
		return err
	}
	isDir := func(name string) bool {
		var st unix.Stat_t
		return unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
	}
	done := map[string]bool{}
	for _, name := range names {
		if done[name] {
			continue
		}
		src, isSnaps := strings.CutSuffix(name, ".snapshots")
		if !isSnaps || !isDir(name) {
			if isDir(name) && slices.Contains(names, name+".snapshots") && isDir(name+".snapshots") {
				continue // the working tree goes after its snapshots
			}
			if err := s.entry(fd, uuid, name, nil, nil, 1); err != nil {
				return err
			}
			continue
		}
		work := ""
		if slices.Contains(names, src) && isDir(src) {
			work = src
			done[src] = true
		}
		if err := s.source(fd, dir, uuid, src, work); err != nil {
			return fmt.Errorf("source %s: %w", src, err)
		}
	}
	return nil
}

// source sends SRC.snapshots: its snapshots oldest first, each compared
// with the one before, then its other directories ("save" trees), then
// its files (.json, latest, the usage ledger); then the working tree
// SRC, compared with the last tree sent.
func (s *sender) source(mfd int, mdir, uuid, src, work string) error {
	snapsName := src + ".snapshots"
	fd, err := openDir(mfd, snapsName)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	base := uuid + "/" + snapsName
	if err := s.header(base, &st, ""); err != nil {
		return err
	}
	snaps, err := backup.ListSnapshots(mdir, src, time.UTC)
	if err != nil {
		return err
	}
	var chain []string // names in fd, in sending order
	for _, sn := range snaps {
		chain = append(chain, filepath.Base(sn.Path))
	}
	names, err := readNames(fd, filepath.Join(mdir, snapsName))
	if err != nil {
		return err
	}
	var files []string
	for _, n := range names {
		var est unix.Stat_t
		if err := unix.Fstatat(fd, n, &est, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		switch {
		case est.Mode&unix.S_IFMT != unix.S_IFDIR:
			files = append(files, n)
		case strings.HasPrefix(n, "_delete-"):
			// Half-removed by retention: the receiving unit would only
			// finish removing it.
		case !slices.Contains(chain, n):
			chain = append(chain, n)
		}
	}
	type tree struct {
		dirfd int
		name  string
	}
	trees := make([]tree, 0, len(chain)+1)
	for _, n := range chain {
		trees = append(trees, tree{fd, n})
	}
	if work != "" {
		trees = append(trees, tree{mfd, work})
	}
	streamName := func(t tree) string {
		if t.dirfd == mfd {
			return uuid + "/" + t.name
		}
		return base + "/" + t.name
	}
	open := func(i int) *peer {
		if i < 0 || i >= len(trees) {
			return nil
		}
		dfd, err := openDir(trees[i].dirfd, trees[i].name)
		if err != nil {
			return nil
		}
		return &peer{fd: dfd, name: streamName(trees[i])}
	}
	var prev *peer
	defer func() { prev.close() }()
	for i, t := range trees {
		if t.dirfd == mfd {
			// The snapshot directory's own files come before the
			// working tree, which lies beside it.
			if err := s.files(fd, base, files); err != nil {
				return err
			}
			files = nil
		}
		next := open(i + 1)
		err := s.tree(t.dirfd, strings.TrimSuffix(streamName(t), "/"+t.name), t.name, prev, next, len(trees)-i)
		next.close()
		if err != nil {
			return err
		}
		prev.close()
		prev = open(i)
	}
	return s.files(fd, base, files)
}

func (s *sender) files(fd int, parent string, names []string) error {
	for _, n := range names {
		if err := s.entry(fd, parent, n, nil, nil, 1); err != nil {
			return err
		}
	}
	return nil
}

// tree sends parent/name, a tree of a source, with prev and next the
// trees sent before and after it (nil for none). remaining is how many
// trees of the source, this one included, are still to be sent: the most
// links a file's same-path chain can explain.
func (s *sender) tree(dirfd int, parent, name string, prev, next *peer, remaining int) error {
	full := parent + "/" + name
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return s.entry(dirfd, parent, name, nil, nil, 1)
	}
	return s.dir(dirfd, full, name, &st, prev, next, remaining)
}

// entry sends parent/name, and everything below it. prev and next are
// the directories matching parent in the neighbouring trees (nil for
// none): their entries of the same name are compared.
func (s *sender) entry(dirfd int, parent, name string, prev, next *peer, remaining int) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	full := parent + "/" + name
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		p, q := prev.sub(name), next.sub(name)
		defer p.close()
		defer q.close()
		return s.dir(dirfd, full, name, &st, p, q, remaining)
	}
	if st.Nlink > 1 {
		if prev.same(name, &st) {
			return s.hardLink(full, &st, prev.name+"/"+name)
		}
		if target, ok := s.cache.get(devIno{uint64(st.Dev), st.Ino}); ok {
			return s.hardLink(full, &st, target)
		}
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		err = s.regular(dirfd, full, name, &st)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, rerr := unix.Readlinkat(dirfd, name, buf)
		if rerr != nil {
			return fmt.Errorf("%s: %w", full, rerr)
		}
		s.stats.Symlinks++
		err = s.header(full, &st, string(buf[:n]))
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		s.stats.Devices++
		err = s.header(full, &st, "")
	default:
		s.stats.Skipped++
		s.log.Warn("not sent: tar has no type for it", "file", full, "mode", fmt.Sprintf("%o", st.Mode))
		return nil
	}
	if err != nil {
		return err
	}
	if st.Nlink > 1 {
		explained := uint64(1)
		if next.same(name, &st) {
			explained = uint64(remaining)
		}
		if uint64(st.Nlink) > explained {
			s.cache.put(devIno{uint64(st.Dev), st.Ino}, full)
		}
	}
	return nil
}

// dir sends a directory and, depth first, everything below it, reading
// it a few hundred entries at a time; prev and next are its matches in
// the neighbouring trees.
func (s *sender) dir(dirfd int, full, name string, st *unix.Stat_t, prev, next *peer, remaining int) error {
	fd, err := openDir(dirfd, name)
	if err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	f := os.NewFile(uintptr(fd), full)
	defer f.Close()
	if err := s.header(full, st, ""); err != nil {
		return err
	}
	for {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			if err := s.entry(fd, full, n, prev, next, remaining); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", full, err)
		}
	}
}

// regular sends a regular file's header and data.
func (s *sender) regular(dirfd int, full, name string, st *unix.Stat_t) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	defer unix.Close(fd)
	if err := s.header(full, st, ""); err != nil {
		return err
	}
	left := st.Size
	for left > 0 {
		n, err := unix.Read(fd, s.buf[:min(int64(len(s.buf)), left)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", full, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: file shrank while it was sent", full)
		}
		if _, err := s.tw.Write(s.buf[:n]); err != nil {
			return err
		}
		left -= int64(n)
	}
	s.stats.Files++
	s.stats.Bytes += st.Size
	return nil
}

// header writes the tar header of full (with a trailing slash for a
// directory); link is a symlink's target.
func (s *sender) header(full string, st *unix.Stat_t, link string) error {
	h := &tar.Header{
		Name:    full,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, full+"/"
		s.stats.Dirs++
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		h.Typeflag = tar.TypeSymlink
	case unix.S_IFCHR:
		h.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		h.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	}
	if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
		h.Devmajor, h.Devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
	}
	h.Linkname = link
	return s.tw.WriteHeader(h)
}

// hardLink writes full as a hard link to target, an entry sent before.
// A link has no metadata of its own (its file's came with target), so
// its mtime is left to the second: without a nanosecond to keep, the
// header is one ustar block instead of three (pax), unless a name needs
// more than ustar holds. Most entries of a machine are such links.
func (s *sender) hardLink(full string, st *unix.Stat_t, target string) error {
	s.stats.HardLinks++
	return s.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeLink, Name: full, Linkname: target,
		Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
	})
}
