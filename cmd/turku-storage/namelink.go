package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/registry"
)

// registered reports whether uuid is in the key cache, the machines the
// coordinator last assigned to this storage unit. While the cache cannot
// be read every machine counts as registered, so no name link moves.
func (w *wiring) registered(uuid string) bool {
	c, err := registry.LoadCache(w.cachePath())
	if err != nil {
		return true
	}
	_, ok := c.Machines[uuid]
	return ok
}

// checkUnambiguous returns an error when two or more registered machines
// (by the key cache) claim name, as their ENV-SERVICE-UNIT link name or
// their unit name: a name link then shows whichever machine took it
// first, which may not be the one the operator means.
func checkUnambiguous(cachePath, name string) error {
	c, err := registry.LoadCache(cachePath)
	if err != nil {
		return nil // no cache: the name link alone decides
	}
	var claim []string
	for uuid, m := range c.Machines {
		link, _ := backup.MachineLinkName(m.EnvironmentName, m.ServiceName, m.UnitName)
		if name == link || name == m.UnitName {
			claim = append(claim, uuid)
		}
	}
	if len(claim) < 2 {
		return nil
	}
	sort.Strings(claim)
	return fmt.Errorf("machine name %q is ambiguous: registered machines %s all claim it; use the UUID", name, strings.Join(claim, ", "))
}
