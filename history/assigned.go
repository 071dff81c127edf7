package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// assignedFile holds when this unit first saw each machine it serves.
const assignedFile = "assigned.json"

// Assignment is when this storage unit first saw a machine assigned to
// it, by the key refresh: a machine that never backs up is late from then.
type Assignment struct {
	Unit  string    `json:"unit,omitempty"`
	Since time.Time `json:"since"`
	// Key is the machine's ssh_public_key as RecordRefresh last saw it:
	// kept so the machine's key can be named once it departs.
	Key string `json:"ssh_public_key,omitempty"`
}

// Assigned returns the machines this unit serves, as the last refresh
// listed them, with when each was first seen. A missing file is empty.
func (s *Store) Assigned() (map[string]Assignment, error) {
	m, _, err := s.AssignedKnown()
	return m, err
}

// AssignedKnown is Assigned, and whether a refresh was ever recorded:
// false while the file is missing. A refresh that listed no machine is
// known and empty — a unit every machine moved away from — which is not a
// unit that never recorded one.
func (s *Store) AssignedKnown() (map[string]Assignment, bool, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, assignedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Assignment{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("history: %w", err)
	}
	var m map[string]Assignment
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, false, fmt.Errorf("history: %s: %w", filepath.Join(s.dir, assignedFile), err)
	}
	if m == nil {
		m = map[string]Assignment{}
	}
	return m, true, nil
}

// SetAssigned records the machines (UUID → unit name) a refresh listed:
// new ones are first seen at now, those still listed keep their time,
// those no longer listed are forgotten. The file is rewritten only when
// that changes something (and written the first time, even empty). It returns the assignments now in force.
func (s *Store) SetAssigned(machines map[string]string, now time.Time) (map[string]Assignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, known, err := s.AssignedKnown()
	if err != nil {
		// An unreadable file is replaced: the times restart from now.
		old = map[string]Assignment{}
	}
	next := make(map[string]Assignment, len(machines))
	for uuid, unit := range machines {
		a, ok := old[uuid]
		if !ok {
			a.Since = now
		}
		a.Unit = unit
		next[uuid] = a
	}
	// A missing file is written even empty: the refresh is then known.
	if err == nil && known && maps.Equal(old, next) {
		return next, nil
	}
	data, jerr := json.Marshal(next)
	if jerr != nil {
		return next, fmt.Errorf("history: %w", jerr)
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return next, fmt.Errorf("history: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, assignedFile), data, fileMode); err != nil {
		return next, fmt.Errorf("history: %w", err)
	}
	return next, nil
}
