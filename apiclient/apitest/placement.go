package apitest

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/turku-backup/turku-storage/apiclient"
)

// unit is what turku-api's placement reads of a storage unit.
type unit struct {
	published bool
	spaceMiB  float64 // space_available as last reported
}

// updateUnit applies storage_update_config's published and
// space_available, as turku-api does: "published" left out means the unit
// wants to be published. s.mu is held; the request was validated.
func (s *Server) updateUnit(name string, st map[string]any) {
	u := s.units[name]
	if u == nil {
		u = &unit{published: true}
		s.units[name] = u
	}
	u.published = true
	if v, ok := st["published"]; ok {
		u.published, _ = djangoBool(v)
	}
	if v, ok := st["space_available"].(float64); ok {
		u.spaceMiB = math.Trunc(v)
	}
}

// djangoBool is a Django BooleanField's to_python: true, false, 1, 0 and
// the strings "t", "True", "1", "f", "False", "0".
func djangoBool(v any) (value, ok bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case float64:
		if x == 1 || x == 0 {
			return x == 1, true
		}
	case string:
		switch x {
		case "t", "True", "1":
			return true, true
		case "f", "False", "0":
			return false, true
		}
	}
	return false, false
}

// Published reports whether the storage unit name is offered for new
// machines, as its last storage_update_config left it.
func (s *Server) Published(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.units[name]
	return u != nil && u.published
}

// ErrNoStorage is PlaceMachine's answer when no storage unit is published,
// turku-api's 404 "No storages are currently available".
var ErrNoStorage = fmt.Errorf("404 No storages are currently available")

// PlaceMachine registers a new machine as turku-api's update_config does:
// it goes to one of the published storage units, chosen at random weighted
// by their space_available (any of them alike when all report 0), and
// stays there. It returns the unit's name. A machine already known keeps
// its unit.
func (s *Server) PlaceMachine(uuid string, info apiclient.MachineInfo) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.machines[uuid]; ok {
		return m.Storage, nil
	}
	var names []string
	var total float64
	for _, name := range slices.Sorted(maps.Keys(s.units)) {
		if s.units[name].published {
			names = append(names, name)
			total += s.units[name].spaceMiB
		}
	}
	if len(names) == 0 {
		return "", ErrNoStorage
	}
	chosen := names[rand.IntN(len(names))]
	if total > 0 {
		r, acc := rand.Float64()*total, 0.0
		for _, name := range names {
			acc += s.units[name].spaceMiB
			if r < acc {
				chosen = name
				break
			}
		}
	}
	s.machines[uuid] = &Machine{Storage: chosen, Info: info, Sources: map[string]*Source{}}
	return chosen, nil
}
