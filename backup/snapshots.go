package backup

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
	"github.com/turku-backup/turku-storage/pyjson"
	"github.com/turku-backup/turku-storage/rsync"
)

// latestLink is the symlink in a snapshot directory naming the newest
// snapshot.
const latestLink = "latest"

// Snapshot is one snapshot of a source (docs/protocol.md §6.2).
type Snapshot struct {
	// Name is the name recorded in its .json, else its directory name.
	Name string
	// Path is the snapshot's directory.
	Path string
	// Base is the snapshot it was hard-linked against, if recorded.
	Base string
	// SyncBegin is zero when unknown (old snapshots).
	SyncBegin time.Time
	// SyncFinish orders snapshots; for old snapshots without a .json it is
	// the time in the directory name.
	SyncFinish time.Time
	// Latest reports whether the "latest" link points at it.
	Latest bool
	// Stats are the figures of the rsync run that made it, from its
	// .json; nil for snapshots written without them (by the old storage
	// unit, or before this one recorded them).
	Stats *rsync.TransferStats
}

// Duration is how long its rsync ran, zero when unknown.
func (s Snapshot) Duration() time.Duration {
	if s.SyncBegin.IsZero() || s.SyncFinish.Before(s.SyncBegin) {
		return 0
	}
	return s.SyncFinish.Sub(s.SyncBegin)
}

// dirName is the snapshot's directory name, which may differ from Name.
func (s Snapshot) dirName() string { return filepath.Base(s.Path) }

// snapshotInfo is the <snapshot>.json file: the four keys the old code
// wrote and read, and the transfer's figures this storage unit adds
// (docs/protocol.md §6.2). Fields are in Python's sort_keys order; null
// and missing read as nil.
type snapshotInfo struct {
	Base             *string `json:"base"`
	BytesReceived    *int64  `json:"bytes_received"`
	Files            *int64  `json:"files"`
	FilesTransferred *int64  `json:"files_transferred"`
	Name             *string `json:"name"`
	NewFiles         *int64  `json:"new_files"`
	SyncBegin        *string `json:"sync_begin"`
	SyncFinish       *string `json:"sync_finish"`
	TotalSize        *int64  `json:"total_size"`
	TransferredSize  *int64  `json:"transferred_size"`
}

// stats returns the figures, or nil when the file has none of them. A
// figure missing among others reads as zero.
func (i snapshotInfo) stats() *rsync.TransferStats {
	fields := []*int64{i.BytesReceived, i.Files, i.FilesTransferred, i.NewFiles, i.TotalSize, i.TransferredSize}
	if !slices.ContainsFunc(fields, func(p *int64) bool { return p != nil }) {
		return nil
	}
	v := func(p *int64) int64 {
		if p == nil || *p < 0 {
			return 0
		}
		return *p
	}
	return &rsync.TransferStats{
		Files: v(i.Files), NewFiles: v(i.NewFiles), FilesTransferred: v(i.FilesTransferred),
		TotalSize: v(i.TotalSize), TransferredSize: v(i.TransferredSize), BytesReceived: v(i.BytesReceived),
	}
}

// snapshotsDir is where a source's snapshots live.
func snapshotsDir(machineDir, source string) string {
	return filepath.Join(machineDir, source+snapshotsSuffix)
}

// ListSnapshots returns the snapshots of source in machineDir, oldest
// first. Directories that are not snapshots ("latest", "_delete-*", names
// containing "save" or "working", names without a time and without a
// .json) are left out. A source without a snapshot directory has none.
func ListSnapshots(machineDir, source string, loc *time.Location) ([]Snapshot, error) {
	if loc == nil {
		loc = time.UTC
	}
	dir := snapshotsDir(machineDir, source)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", source, err)
	}
	latest, _ := os.Readlink(filepath.Join(dir, latestLink))
	var out []Snapshot
	for _, e := range entries {
		name := e.Name()
		if !isSnapshotEntry(e, source) {
			continue
		}
		s, ok := readSnapshot(dir, name, loc)
		if !ok {
			continue
		}
		s.Latest = name == latest
		out = append(out, s)
	}
	sortSnapshots(out)
	return out, nil
}

// sortSnapshots orders by SyncFinish, then by name for a stable order.
func sortSnapshots(s []Snapshot) {
	slices.SortFunc(s, func(a, b Snapshot) int {
		if c := a.SyncFinish.Compare(b.SyncFinish); c != 0 {
			return c
		}
		return strings.Compare(a.dirName(), b.dirName())
	})
}

// isSnapshotEntry reports whether e, in source's snapshot directory, may
// be a snapshot: a directory, not a dot-name, not one being deleted.
func isSnapshotEntry(e fs.DirEntry, source string) bool {
	name := e.Name()
	return e.IsDir() && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, deletePrefix) && !excludedName(name, source)
}

// readSnapshot describes the directory dir/name from its .json, falling
// back to the time in its name. A .json that cannot be read is treated as
// missing rather than failing the whole listing.
func readSnapshot(dir, name string, loc *time.Location) (Snapshot, bool) {
	s := Snapshot{Name: name, Path: filepath.Join(dir, name)}
	nameTime, nameOK := parseSnapshotName(name, loc)
	var info snapshotInfo
	if data, err := os.ReadFile(filepath.Join(dir, name+".json")); err == nil && json.Unmarshal(data, &info) == nil {
		if info.Name != nil && *info.Name != "" {
			s.Name = *info.Name
		}
		if info.Base != nil {
			s.Base = *info.Base
		}
		s.Stats = info.stats()
		if info.SyncBegin != nil {
			s.SyncBegin, _ = parseISOTime(*info.SyncBegin, loc)
		}
		if info.SyncFinish != nil && *info.SyncFinish != "" {
			if t, err := parseISOTime(*info.SyncFinish, loc); err == nil {
				s.SyncFinish = t
			}
		}
	}
	if s.SyncFinish.IsZero() {
		if !nameOK {
			return Snapshot{}, false
		}
		s.SyncFinish = nameTime
	}
	return s, true
}

// newest returns the snapshot that finished last, or nil.
func newest(snaps []Snapshot) *Snapshot {
	if len(snaps) == 0 {
		return nil
	}
	s := snaps[0]
	for _, x := range snaps[1:] {
		if x.SyncFinish.After(s.SyncFinish) || (x.SyncFinish.Equal(s.SyncFinish) && x.dirName() > s.dirName()) {
			s = x
		}
	}
	return &s
}

// ListSources returns the sources that have a working tree or a snapshot
// directory in machineDir, sorted.
func ListSources(machineDir string) ([]string, error) {
	entries, err := os.ReadDir(machineDir)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		out = append(out, strings.TrimSuffix(e.Name(), snapshotsSuffix))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// encodeInfo renders a .json file exactly as the old Python code's
// json.dump(sort_keys=True, indent=4, ensure_ascii) would: four-space
// indent, no trailing newline, non-ASCII as \u escapes, null for no base.
// With stats, the transfer's figures join the four keys the old code
// reads, each in its sorted place.
func encodeInfo(name, base string, begin, finish time.Time, stats *rsync.TransferStats) []byte {
	baseJSON := "null"
	if base != "" {
		baseJSON = pyjson.Quote(base)
	}
	type kv struct{ key, value string }
	keys := []kv{
		{"base", baseJSON},
		{"name", pyjson.Quote(name)},
		{"sync_begin", pyjson.Quote(isoTime(begin))},
		{"sync_finish", pyjson.Quote(isoTime(finish))},
	}
	if stats != nil {
		n := func(v int64) string { return strconv.FormatInt(v, 10) }
		keys = append(keys,
			kv{"bytes_received", n(stats.BytesReceived)},
			kv{"files", n(stats.Files)},
			kv{"files_transferred", n(stats.FilesTransferred)},
			kv{"new_files", n(stats.NewFiles)},
			kv{"total_size", n(stats.TotalSize)},
			kv{"transferred_size", n(stats.TransferredSize)},
		)
		slices.SortFunc(keys, func(a, b kv) int { return strings.Compare(a.key, b.key) })
	}
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n    %q: %s", k.key, k.value)
	}
	b.WriteString("\n}")
	return []byte(b.String())
}

// replaceSymlink points link at target atomically: a new symlink under a
// temporary name is renamed over the old one, so "latest" never vanishes.
func replaceSymlink(target, link string) error {
	tmp := filepath.Join(filepath.Dir(link), ".tmp-"+filepath.Base(link)+"-"+rand.Text())
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// commitSnapshot turns the finished working tree into snapshot name: the
// .json first (a crash leaves at worst a .json without directory, which is
// ignored), then the rename, then "latest".
func commitSnapshot(work, snapDir, name, base string, begin, finish time.Time, stats *rsync.TransferStats) error {
	info := encodeInfo(name, base, begin, finish, stats)
	if err := atomicfile.WriteFile(filepath.Join(snapDir, name+".json"), info, 0o644); err != nil {
		return fmt.Errorf("write %s.json: %w", name, err)
	}
	if err := os.Rename(work, filepath.Join(snapDir, name)); err != nil {
		os.Remove(filepath.Join(snapDir, name+".json"))
		return fmt.Errorf("rename working tree to snapshot %s: %w", name, err)
	}
	if err := atomicfile.SyncDir(snapDir); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(filepath.Dir(work)); err != nil {
		return err
	}
	if err := replaceSymlink(name, filepath.Join(snapDir, latestLink)); err != nil {
		return fmt.Errorf("point %s at %s: %w", latestLink, name, err)
	}
	return atomicfile.SyncDir(snapDir)
}
