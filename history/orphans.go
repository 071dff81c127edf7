package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// Files beside assigned.json: the machines with data here that the key
// refresh no longer assigns here, and the keys of machines it listed
// before.
const (
	orphansFile  = "orphans.json"
	departedFile = "departed.json"
)

// Departed machines' keys are kept this long, and at most this many (the
// newest departures), so that a refused key can be named for a while
// without the file growing with every machine that ever left.
const (
	DepartedKeep = 30 * 24 * time.Hour
	MaxDeparted  = 1000
)

// Orphan is a machine with data on this storage unit that the key refresh
// no longer assigns here, since Since (the first refresh that did not
// list it).
type Orphan struct {
	Unit  string    `json:"unit,omitempty"`
	Since time.Time `json:"since"`
}

// Departure is a machine an earlier key refresh listed and a later one did
// not: its key, kept to tell why it is refused, and when it left.
type Departure struct {
	Unit  string    `json:"unit,omitempty"`
	Key   string    `json:"ssh_public_key"`
	Since time.Time `json:"since"`
}

// Listed is a machine as a key refresh lists it.
type Listed struct {
	Unit string
	// Key is its ssh_public_key, kept for when it departs.
	Key string
}

// Listing is what one key refresh saw.
type Listing struct {
	Machines map[string]Listed
	// OnDisk are the machines with a UUID link in VAR_DIR/machines.
	OnDisk []string
	// DiskErr is why OnDisk could not be read; the orphans then stay as
	// they were.
	DiskErr error
}

// Refreshed is the state a key refresh leaves.
type Refreshed struct {
	Assigned map[string]Assignment
	Orphans  map[string]Orphan
	Departed map[string]Departure
}

// Orphans returns the orphaned machines the last key refresh found. A
// missing file is empty.
func (s *Store) Orphans() (map[string]Orphan, error) {
	return readMap[Orphan](filepath.Join(s.dir, orphansFile))
}

// Departed returns the machines that left this unit within DepartedKeep,
// with their keys. A missing file is empty.
func (s *Store) Departed() (map[string]Departure, error) {
	return readMap[Departure](filepath.Join(s.dir, departedFile))
}

func readMap[T any](path string) (map[string]T, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]T{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	var m map[string]T
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("history: %s: %w", path, err)
	}
	if m == nil {
		m = map[string]T{}
	}
	return m, nil
}

// writeMap replaces path with m unless m equals old (and old was read).
func writeMap[T comparable](dir, name string, m, old map[string]T, oldOK bool) error {
	if oldOK && maps.Equal(m, old) {
		return nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, name), data, fileMode); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// RecordRefresh records what a key refresh listed, as SetAssigned does,
// and from it:
//   - the orphans: machines on disk it does not list, each since the first
//     refresh that did not list it (a machine listed again is no orphan);
//   - the departures: machines the previous refresh listed with a key and
//     this one does not, kept DepartedKeep and at most MaxDeparted (a
//     machine listed again is forgotten).
//
// Files are rewritten only when they change. An unreadable file is
// replaced: its times restart from now.
func (s *Store) RecordRefresh(l Listing, now time.Time) (Refreshed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	oldA, knownA, errA := s.AssignedKnown()
	if errA != nil {
		oldA = map[string]Assignment{}
	}
	oldO, errO := s.Orphans()
	if errO != nil {
		oldO = map[string]Orphan{}
	}
	oldD, errD := s.Departed()
	if errD != nil {
		oldD = map[string]Departure{}
	}
	var r Refreshed
	r.Assigned = make(map[string]Assignment, len(l.Machines))
	for uuid, m := range l.Machines {
		a, ok := oldA[uuid]
		if !ok {
			a.Since = now
		}
		a.Unit, a.Key = m.Unit, m.Key
		r.Assigned[uuid] = a
	}

	r.Departed = map[string]Departure{}
	for uuid, d := range oldD {
		if _, back := l.Machines[uuid]; !back && now.Sub(d.Since) <= DepartedKeep {
			r.Departed[uuid] = d
		}
	}
	for uuid, a := range oldA {
		if _, still := l.Machines[uuid]; still || a.Key == "" {
			continue
		}
		r.Departed[uuid] = Departure{Unit: a.Unit, Key: a.Key, Since: now}
	}
	if n := len(r.Departed) - MaxDeparted; n > 0 {
		byAge := slices.SortedFunc(maps.Keys(r.Departed), func(a, b string) int {
			return r.Departed[a].Since.Compare(r.Departed[b].Since)
		})
		for _, uuid := range byAge[:n] {
			delete(r.Departed, uuid)
		}
	}

	if l.DiskErr != nil {
		r.Orphans = oldO
	} else {
		r.Orphans = map[string]Orphan{}
		for _, uuid := range l.OnDisk {
			if _, ok := l.Machines[uuid]; ok {
				continue
			}
			o, ok := oldO[uuid]
			if !ok {
				o = Orphan{Unit: oldA[uuid].Unit, Since: now}
				if o.Unit == "" {
					o.Unit = oldD[uuid].Unit
				}
			}
			r.Orphans[uuid] = o
		}
	}
	return r, errors.Join(
		// Written the first time even empty: check tells a refresh that
		// listed no machine from none recorded (AssignedKnown).
		writeMap(s.dir, assignedFile, r.Assigned, oldA, errA == nil && knownA),
		writeMap(s.dir, departedFile, r.Departed, oldD, errD == nil),
		writeMap(s.dir, orphansFile, r.Orphans, oldO, errO == nil),
	)
}
