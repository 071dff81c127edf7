package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/turku-backup/turku-storage/apiclient"
)

// MachinesDir is VAR_DIR/machines: for each machine a link named by its
// UUID to its directory on a volume, and name links (ENV-SERVICE-UNIT) to
// the UUID.
func MachinesDir(varDir string) string { return filepath.Join(varDir, "machines") }

// ResolveMachine turns a machine UUID, link name (ENV-SERVICE-UNIT) or, by
// the registered machines, a bare unit name into the machine's UUID and
// its directory under VAR_DIR/machines; dir is always one entry of that
// directory. registered returns the machines the coordinator last
// assigned to this storage unit (the key cache); while it fails, a name
// link alone decides and a bare unit name is not found. A name that two
// or more registered machines claim is an error naming them.
func ResolveMachine(varDir, name string, registered func() (map[string]apiclient.MachineInfo, error)) (uuid, dir string, err error) {
	dir, err = machineDir(MachinesDir(varDir), name, registered)
	if err != nil {
		return "", "", err
	}
	// machines/UUID points at VOLUME/UUID; a name link points at UUID.
	if target, err := os.Readlink(dir); err == nil && !filepath.IsAbs(target) && !strings.Contains(target, "/") {
		return target, dir, nil
	}
	return filepath.Base(dir), dir, nil
}

// machineDir resolves a machine UUID, link name (ENV-SERVICE-UNIT) or, by
// the machine cache, a bare unit name to its directory under
// VAR_DIR/machines; the result is always one entry of that directory.
func machineDir(machinesDir, name string, registered func() (map[string]apiclient.MachineInfo, error)) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("machine %q: not a machine UUID or unit name", name)
	}
	if err := checkUnambiguous(registered, name); err != nil {
		return "", err
	}
	p := filepath.Join(machinesDir, name)
	info, err := os.Stat(p)
	if err != nil {
		uuid, uerr := uuidForUnit(registered, name)
		if uerr != nil {
			return "", fmt.Errorf("machine %q: no such machine in %s: %w", name, machinesDir, uerr)
		}
		p = filepath.Join(machinesDir, uuid)
		if info, err = os.Stat(p); err != nil {
			return "", fmt.Errorf("machine %q (%s): no backups in %s yet", name, uuid, machinesDir)
		}
	}
	if !info.IsDir() {
		return "", fmt.Errorf("machine %q: %s is not a directory", name, p)
	}
	return p, nil
}

// uuidForUnit finds the one machine with this unit name in the key cache.
func uuidForUnit(registered func() (map[string]apiclient.MachineInfo, error), unit string) (string, error) {
	machines, err := registered()
	if err != nil {
		return "", err
	}
	var found []string
	for uuid, m := range machines {
		if m.UnitName == unit {
			found = append(found, uuid)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no machine has unit name %q", unit)
	case 1:
		return found[0], nil
	}
	sort.Strings(found)
	return "", fmt.Errorf("unit name %q is ambiguous (%s): use the UUID", unit, strings.Join(found, ", "))
}

// checkUnambiguous returns an error when two or more registered machines
// (by the key cache) claim name, as their ENV-SERVICE-UNIT link name or
// their unit name: a name link then shows whichever machine took it
// first, which may not be the one the operator means.
func checkUnambiguous(registered func() (map[string]apiclient.MachineInfo, error), name string) error {
	machines, err := registered()
	if err != nil {
		return nil // no cache: the name link alone decides
	}
	var claim []string
	for uuid, m := range machines {
		link, _ := MachineLinkName(m.EnvironmentName, m.ServiceName, m.UnitName)
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
