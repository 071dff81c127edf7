package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// IndexFile is the snapshot index, under VAR_DIR/history: what the last
// listing found of each source (its snapshots' names and finish times,
// the "latest" link, its usage ledger) with the change stamps of the
// machine and snapshot directories it read them from. It is a cache: any
// directory whose stamp differs is read again, and a missing, unreadable
// or older index is rebuilt from the disk.
const IndexFile = "snapshots.index"

// indexFormat is the index's format; an index of another is rebuilt.
const indexFormat = 1

// racyWindow: a directory changed this shortly before a listing began
// may change again within the same timestamp tick without its stamp
// moving, so its stamp is not kept and the next listing reads it again
// (git's "racy" index entries).
const racyWindow = 2 * time.Second

// dirStamp is what a directory is compared by (stampOf); the zero stamp
// matches no directory.
type dirStamp struct {
	Mtime int64
	Ctime int64
	Ino   uint64
}

// snapIndex is IndexFile's content.
type snapIndex struct {
	Format int
	// Location is the zone snapshot names were read in; another zone
	// gives other finish times, so the index is rebuilt.
	Location string
	// Machines are keyed by machine directory.
	Machines map[string]*indexMachine
}

type indexMachine struct {
	Stamp   dirStamp
	Sources map[string]*indexSource
}

type indexSource struct {
	// HasDir reports that the source has a snapshot directory, whose
	// stamp is Stamp; without one it has no snapshots (mode "none").
	HasDir    bool
	Stamp     dirStamp
	Latest    string
	Snapshots []indexSnap
	// Usage is the usage ledger's bytes, -1 without one; UsageErr why
	// the ledger could not be read (the entry is then not kept).
	Usage    int64
	UsageErr string
}

// indexSnap is a snapshot: its directory, its name when the .json records
// another, its finish time in Unix nanoseconds.
type indexSnap struct {
	Dir    string
	Name   string
	Finish int64
}

// IndexOptions say how Summaries lists.
type IndexOptions struct {
	// Location is the zone of the snapshot names (nil: UTC).
	Location *time.Location
	// Rescan reads every machine directory again, as if there were no
	// index.
	Rescan bool
	// Log gets a line when the index is rebuilt or cannot be written.
	Log *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// MachineSummary is a machine as Summaries lists it: Inventory's
// MachineOnDisk with each source's count and newest snapshot instead of
// all of them, and its usage as MachineUsage would return it (its error
// in UsageErr).
type MachineSummary struct {
	UUID  string
	Dir   string
	Names []string
	// Sources are sorted by name.
	Sources []SourceSummary
	// Err is why the machine directory could not be read; Sources then
	// holds those read before it.
	Err      error
	Usage    SnapshotUsage
	UsageErr error
}

// SourceSummary is one source of a MachineSummary.
type SourceSummary struct {
	Name string
	// Count is how many snapshots it has; Newest the one that finished
	// last (nil: none), with its Name, Path, SyncFinish and Latest only.
	Count  int
	Newest *Snapshot
	// Snapshots are all of them, oldest first, only in an Overview with
	// Snapshots (read from every .json).
	Snapshots []Snapshot
}

// Summaries lists every machine as Inventory does, and each one's usage
// as MachineUsage does, reading only the directories that changed since
// the index (IndexFile) was written: one stat per machine and per
// snapshot directory when nothing did. A changed snapshot directory is
// listed again, with the .json of only the snapshots the index does not
// know. The index is then written again if anything changed; a failure to
// write it is logged, and the listing is right all the same.
func Summaries(ctx context.Context, varDir string, o IndexOptions) ([]MachineSummary, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	start := now()
	links, err := MachineLinks(varDir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(varDir, history.DirName, IndexFile)
	old, fresh := loadIndex(path, loc, o.Rescan, log)
	r := indexRead{old: old, loc: loc, racy: start.Add(-racyWindow).UnixNano(), changed: fresh,
		next: &snapIndex{Format: indexFormat, Location: loc.String(), Machines: make(map[string]*indexMachine, len(links))}}
	out := make([]MachineSummary, 0, len(links))
	for _, uuid := range slices.Sorted(maps.Keys(links)) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, r.machine(uuid, links[uuid]))
	}
	if r.changed || len(r.next.Machines) != len(old.Machines) {
		if err := saveIndex(path, r.next); err != nil {
			log.Warn("snapshot index not written", "err", err)
		}
	}
	return out, nil
}

// loadIndex reads the index at path; fresh reports that there was none
// to use (missing, unreadable, of another format or zone, or rescan), in
// which case the index returned is empty.
func loadIndex(path string, loc *time.Location, rescan bool, log *slog.Logger) (idx *snapIndex, fresh bool) {
	empty := &snapIndex{Machines: map[string]*indexMachine{}}
	if rescan {
		return empty, true
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return empty, true
	}
	if err == nil {
		idx, err = decodeIndex(data)
	}
	switch {
	case err != nil:
		log.Warn("snapshot index unreadable, rebuilding it from the disk", "path", path, "err", err)
	case idx.Format != indexFormat:
		log.Info("snapshot index of another format, rebuilding it from the disk", "path", path, "format", idx.Format)
	case idx.Location != loc.String():
		log.Info("snapshot index of another time zone, rebuilding it from the disk", "path", path, "zone", idx.Location)
	case idx.Machines == nil:
		log.Warn("snapshot index without machines, rebuilding it from the disk", "path", path)
	default:
		return idx, false
	}
	return empty, true
}

// saveIndex replaces the index at path, creating VAR_DIR/history if
// needed.
func saveIndex(path string, idx *snapIndex) error {
	data := idx.encode()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o640)
}

// indexRead is one Summaries pass: the index read (old) and the one it
// builds (next).
type indexRead struct {
	old, next *snapIndex
	loc       *time.Location
	// racy: a stamp changed at or after this (Unix ns) is not kept.
	racy    int64
	changed bool
}

// keep returns s, or the zero stamp if s changed too recently to trust.
func (r *indexRead) keep(s dirStamp) dirStamp {
	if s.Ctime >= r.racy || s.Mtime >= r.racy {
		return dirStamp{}
	}
	return s
}

// machine lists one machine, from the index as far as its stamps allow.
func (r *indexRead) machine(uuid string, l MachineLink) MachineSummary {
	m := MachineSummary{UUID: uuid, Dir: l.Dir, Names: l.Names}
	prev := r.old.Machines[l.Dir]
	fi, err := os.Stat(l.Dir)
	if err != nil || !fi.IsDir() {
		// Read it as Inventory does, for the same error.
		r.changed = r.changed || prev != nil
		var sources []SourceOnDisk
		sources, m.Err = sourcesOnDisk(l.Dir, r.loc)
		for _, src := range sources {
			m.Sources = append(m.Sources, summary(src, false))
		}
		return m
	}
	stamp := stampOf(fi)
	var names []string
	same := prev != nil && stamp == prev.Stamp
	if same {
		names = slices.Sorted(maps.Keys(prev.Sources))
	} else if names, err = ListSources(l.Dir); err != nil {
		r.changed = r.changed || prev != nil
		m.Err = err
		return m
	}
	im := &indexMachine{Stamp: r.keep(stamp), Sources: make(map[string]*indexSource, len(names))}
	if !same || im.Stamp != stamp {
		r.changed = true
	}
	m.Usage = SnapshotUsage{Known: true, Sources: map[string]int64{}}
	m.Sources = make([]SourceSummary, 0, len(names))
	for _, name := range names {
		var ps *indexSource
		if prev != nil {
			ps = prev.Sources[name]
		}
		is, err := r.source(l.Dir, name, ps, same)
		if err != nil {
			// As Inventory: the sources before it, and the error.
			r.changed = true
			m.Err = err
			m.Usage = SnapshotUsage{}
			return m
		}
		m.Sources = append(m.Sources, is.summary(name, snapshotsDir(l.Dir, name), r.loc))
		im.Sources[name] = is
		m.addUsage(name, is)
	}
	r.next.Machines[l.Dir] = im
	return m
}

// addUsage counts source's ledger into m.Usage as MachineUsage does.
func (m *MachineSummary) addUsage(source string, is *indexSource) {
	switch {
	case !is.HasDir || m.UsageErr != nil:
	case is.UsageErr != "":
		m.UsageErr = errors.New(is.UsageErr)
		m.Usage = SnapshotUsage{}
	case is.Usage < 0:
		m.Usage.Known = false
		m.Usage.Sources[source] = -1
	default:
		m.Usage.Bytes += is.Usage
		m.Usage.Sources[source] = is.Usage
	}
}

// source lists one source of the machine in dir from its index entry
// prev (nil: none) if its snapshot directory did not change, else from
// the disk. sameMachine reports that the machine directory did not
// change either: a source that had no snapshot directory still has none.
func (r *indexRead) source(dir, name string, prev *indexSource, sameMachine bool) (*indexSource, error) {
	sd := snapshotsDir(dir, name)
	if sameMachine && prev != nil && !prev.HasDir {
		return prev, nil
	}
	fi, err := os.Stat(sd)
	if errors.Is(err, fs.ErrNotExist) {
		if prev == nil || prev.HasDir {
			r.changed = true
		}
		return &indexSource{Usage: -1}, nil
	}
	if err != nil || !fi.IsDir() {
		// Not a directory one can list: the error ListSnapshots gives.
		_, err := ListSnapshots(dir, name, r.loc)
		if err == nil {
			err = fmt.Errorf("list snapshots of %s: %s is not a directory", name, sd)
		}
		return nil, err
	}
	stamp := stampOf(fi)
	if prev != nil && prev.HasDir && stamp == prev.Stamp {
		return prev, nil
	}
	r.changed = true
	is, err := r.readSource(sd, name, prev)
	if err != nil {
		return nil, err
	}
	if is.UsageErr == "" {
		is.Stamp = r.keep(stamp)
	}
	return is, nil
}

// readSource lists the snapshot directory sd of source as ListSnapshots
// does, reading the .json of the snapshots prev does not know, and its
// usage ledger.
func (r *indexRead) readSource(sd, source string, prev *indexSource) (*indexSource, error) {
	entries, err := os.ReadDir(sd)
	if err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", source, err)
	}
	known := map[string]indexSnap{}
	if prev != nil {
		for _, s := range prev.Snapshots {
			known[s.Dir] = s
		}
	}
	is := &indexSource{HasDir: true, Usage: -1}
	is.Latest, _ = os.Readlink(filepath.Join(sd, latestLink))
	for _, e := range entries {
		if !isSnapshotEntry(e, source) {
			continue
		}
		if s, ok := known[e.Name()]; ok {
			is.Snapshots = append(is.Snapshots, s)
			continue
		}
		s, ok := readSnapshot(sd, e.Name(), r.loc)
		if !ok {
			continue
		}
		is.Snapshots = append(is.Snapshots, indexSnap{Dir: e.Name(), Name: nameIfNot(s.Name, e.Name()), Finish: s.SyncFinish.UnixNano()})
	}
	bytes, ledger, err := readUsage(sd)
	switch {
	case err != nil:
		is.UsageErr = fmt.Sprintf("source %s: %v", source, err)
	case ledger:
		is.Usage = bytes
	}
	return is, nil
}

// summary is the entry as the SourceSummary of source, whose snapshot
// directory is sd: the newest snapshot is the one that finished last,
// of two at the same time the one whose directory sorts last (newest).
func (is *indexSource) summary(source, sd string, loc *time.Location) SourceSummary {
	ss := SourceSummary{Name: source, Count: len(is.Snapshots)}
	if ss.Count == 0 {
		return ss
	}
	n := is.Snapshots[0]
	for _, s := range is.Snapshots[1:] {
		if s.Finish > n.Finish || (s.Finish == n.Finish && s.Dir > n.Dir) {
			n = s
		}
	}
	ss.Newest = &Snapshot{Name: cmp.Or(n.Name, n.Dir), Path: filepath.Join(sd, n.Dir), SyncFinish: time.Unix(0, n.Finish).In(loc), Latest: n.Dir == is.Latest}
	return ss
}

// summary is src as a SourceSummary, with all its snapshots if all.
func summary(src SourceOnDisk, all bool) SourceSummary {
	ss := SourceSummary{Name: src.Name, Count: len(src.Snapshots), Newest: src.Newest()}
	if all {
		ss.Snapshots = src.Snapshots
	}
	return ss
}

// nameIfNot returns name, or "" when it is the directory's name dir.
func nameIfNot(name, dir string) string {
	if name == dir {
		return ""
	}
	return name
}
