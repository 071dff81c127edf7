package daemon

import (
	"path/filepath"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/registry"
)

// registered reports whether uuid is in the key cache, the machines the
// coordinator last assigned to this storage unit. While the cache cannot
// be read every machine counts as registered, so no name link moves.
func (w *Wiring) registered(uuid string) bool {
	c, err := registry.LoadCache(w.cachePath())
	if err != nil {
		return true
	}
	_, ok := c.Machines[uuid]
	return ok
}

// RegisteredMachines reads the key cache, the machines the coordinator
// last assigned to this storage unit, for backup.ResolveMachine.
func RegisteredMachines(cfg *config.Config) func() (map[string]apiclient.MachineInfo, error) {
	return func() (map[string]apiclient.MachineInfo, error) {
		c, err := registry.LoadCache(filepath.Join(cfg.VarDir, registry.CacheFile))
		if err != nil {
			return nil, err
		}
		return c.Machines, nil
	}
}
