package transfer

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// ErrExists is returned by Receive when the machine already has data on
// this storage unit.
var ErrExists = errors.New("machine already has data on this storage unit")

// tempPrefix names a machine directory being received, on its volume.
const tempPrefix = ".turku-receive-"

// ReceiveOptions configures Receive. cmd builds it.
type ReceiveOptions struct {
	// Machines is this storage unit's machines: the lock, placement and
	// links.
	Machines *backup.Machines
	// Expect, when set, is the UUID the stream must hold.
	Expect string
	// Sync flushes the volume's filesystem (syncfs) before the machine
	// is renamed into place. Without it, like rsync and the backups,
	// the data reaches the disk when the kernel writes it back.
	Sync bool
	// Logger receives what was done; nil discards it.
	Logger *slog.Logger
}

// Received is what Receive put in place.
type Received struct {
	Header Header
	// Dir is the machine directory, VOLUME/UUID.
	Dir    string
	Volume string
	// Names are the name links made (a name another machine holds is
	// left to it, and logged).
	Names []string
	Stats Stats
}

// Receive reads a transfer stream from r into a new machine directory on
// the volume placement chooses, under a temporary name, and renames it
// into place and links it (VAR_DIR/machines/UUID and its name links)
// only once the whole stream has matched its checksum. A stream that is
// truncated, corrupt or names anything outside the machine directory, or
// a machine that already has data here, is refused, and nothing is left
// behind. Entries are created relative to directories this receive
// created and holds open, never following a symlink.
func Receive(ctx context.Context, r io.Reader, opts ReceiveOptions) (Received, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	br := bufio.NewReaderSize(r, 1<<20)
	digest := sha256.New()
	tr := tar.NewReader(io.TeeReader(br, digest))
	hdr, err := readHeader(tr)
	if err != nil {
		return Received{}, err
	}
	uuid := hdr.Machine
	if opts.Expect != "" && opts.Expect != uuid {
		return Received{}, fmt.Errorf("the stream holds machine %s, not %s", uuid, opts.Expect)
	}
	m := opts.Machines
	unlock, err := m.Lock(uuid)
	if err != nil {
		return Received{}, fmt.Errorf("machine %s: %w", uuid, err)
	}
	defer unlock()
	if dir, exists, _ := m.Link(uuid); exists {
		return Received{}, fmt.Errorf("machine %s: %w (%s -> %s); nothing received", uuid, ErrExists, filepath.Join(backup.MachinesDir(m.VarDir()), uuid), dir)
	}
	for _, v := range m.Volumes() {
		if _, err := os.Lstat(filepath.Join(v.Path, uuid)); err == nil {
			return Received{}, fmt.Errorf("machine %s: %w (%s exists without a link in %s); nothing received", uuid, ErrExists, filepath.Join(v.Path, uuid), backup.MachinesDir(m.VarDir()))
		}
	}
	vol, err := m.ChooseVolume()
	if err != nil {
		return Received{}, fmt.Errorf("machine %s: %w", uuid, err)
	}
	// Under the machine's lock, a temporary tree of it is what a
	// receive that was killed left.
	stale, _ := filepath.Glob(filepath.Join(vol.Path, tempPrefix+uuid+"-*"))
	for _, p := range stale {
		opts.Logger.Info("removing an unfinished receive", "machine", uuid, "dir", p)
		if err := removeAll(p); err != nil {
			return Received{}, err
		}
	}
	tmp := filepath.Join(vol.Path, tempPrefix+uuid+"-"+rand.Text()[:8])
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return Received{}, fmt.Errorf("machine %s: %w", uuid, err)
	}
	rootfd, err := unix.Open(tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(tmp)
		return Received{}, fmt.Errorf("machine %s: open %s: %w", uuid, tmp, err)
	}
	x := &extractor{uuid: uuid, root: rootfd, rootPath: tmp, lastLinkFd: -1, root0: true, buf: make([]byte, 256<<10), asRoot: os.Geteuid() == 0, log: opts.Logger}
	x.uid, x.gid, x.umask = os.Geteuid(), os.Getegid(), processUmask()
	if fi, err := os.Stat(tmp); err != nil || fi.Mode()&fs.ModeSetgid != 0 {
		x.gid = -1
	}
	ok := false
	defer func() {
		x.closeAll()
		if !ok {
			if err := removeAll(tmp); err != nil {
				opts.Logger.Error("removing a refused receive", "machine", uuid, "dir", tmp, "err", err)
			}
		}
	}()
	if err := x.extract(ctx, tr); err != nil {
		return Received{}, fmt.Errorf("machine %s: %w; nothing received", uuid, err)
	}
	if err := verifyTrailer(br, digest.Sum(nil)); err != nil {
		return Received{}, fmt.Errorf("machine %s: %w; nothing received", uuid, err)
	}
	if err := x.finish(); err != nil {
		return Received{}, fmt.Errorf("machine %s: %w; nothing received", uuid, err)
	}
	if opts.Sync {
		// The data is on disk before the directory gets its name.
		if err := syncFS(rootfd); err != nil {
			return Received{}, fmt.Errorf("machine %s: syncfs: %w; nothing received", uuid, err)
		}
	}
	dir := filepath.Join(vol.Path, uuid)
	if err := renameNoReplace(tmp, dir); err != nil {
		return Received{}, fmt.Errorf("machine %s: rename into place: %w; nothing received", uuid, err)
	}
	if err := atomicfile.SyncDir(vol.Path); err != nil {
		opts.Logger.Warn("volume directory not synced after the rename", "machine", uuid, "dir", vol.Path, "err", err)
	}
	if err := m.AddLink(uuid, dir); err != nil {
		// Put it back under the temporary name, which the deferred
		// cleanup removes.
		if rerr := os.Rename(dir, tmp); rerr != nil {
			ok = true
			return Received{}, fmt.Errorf("machine %s: %w; %s left in place: %v", uuid, err, dir, rerr)
		}
		return Received{}, fmt.Errorf("machine %s: %w; nothing received", uuid, err)
	}
	ok = true
	res := Received{Header: hdr, Dir: dir, Volume: vol.Name, Stats: x.stats}
	for _, n := range hdr.Names {
		if err := m.AddName(uuid, n); err != nil {
			opts.Logger.Warn("machine name link failed", "machine", uuid, "unit", n, "err", err)
			continue
		}
		if names, _ := m.Names(uuid); slices.Contains(names, n) {
			res.Names = append(res.Names, n)
		}
	}
	opts.Logger.Info("machine received", "machine", uuid, "volume", vol.Name, "dir", dir, "from", hdr.Storage,
		"files", x.stats.Files, "bytes", x.stats.Bytes)
	return res, nil
}

// corrupt wraps a read error of the stream: a truncated stream ends
// with io.ErrUnexpectedEOF, a damaged header fails tar's own checks.
func corrupt(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}

func readHeader(tr *tar.Reader) (Header, error) {
	th, err := tr.Next()
	if err != nil {
		return Header{}, corrupt(err)
	}
	if th.Typeflag != tar.TypeReg || th.Name != headerName || th.Size > maxHeaderSize {
		return Header{}, fmt.Errorf("not a turku-storage transfer stream (first entry %q)", th.Name)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return Header{}, corrupt(err)
	}
	var h Header
	if err := json.Unmarshal(data, &h); err != nil {
		return Header{}, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	return h, h.check()
}

// verifyTrailer reads the trailer line after tar's end of archive and
// checks it against sum, and that nothing follows it.
func verifyTrailer(br *bufio.Reader, sum []byte) error {
	buf := make([]byte, trailerLen)
	if _, err := io.ReadFull(br, buf); err != nil {
		return corrupt(fmt.Errorf("trailer: %w", err))
	}
	if string(buf) != string(trailer(sum)) {
		if !strings.HasPrefix(string(buf), trailerPrefix) {
			return fmt.Errorf("%w: no trailer after the archive", ErrCorrupt)
		}
		return fmt.Errorf("%w: SHA-256 does not match the trailer", ErrCorrupt)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: data after the trailer", ErrCorrupt)
	}
	return nil
}

// removeAll removes a tree received in part, making its directories
// writable first where a mode from the stream forbids removal.
func removeAll(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
