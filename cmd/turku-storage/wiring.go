package main

import (
	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/daemon"
)

// registeredMachines reads the key cache (daemon.RegisteredMachines), for
// backup.ResolveMachine.
func registeredMachines(cfg *config.Config) func() (map[string]apiclient.MachineInfo, error) {
	return daemon.RegisteredMachines(cfg)
}
