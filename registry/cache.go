package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// CacheFile is the cache's name under var_dir.
const CacheFile = "machines.json"

// cacheFormat is the on-disk shape; Version lets a later release change it.
type cacheFormat struct {
	Version  int                              `json:"version"`
	Updated  time.Time                        `json:"updated"`
	Machines map[string]apiclient.MachineInfo `json:"machines"`
}

// Cache is a snapshot of the last successful refresh.
type Cache struct {
	Updated  time.Time
	Machines map[string]apiclient.MachineInfo
}

// ErrNoCache is returned by LoadCache when no refresh has succeeded yet.
var ErrNoCache = errors.New("no machine cache yet")

// LoadCache reads the cache at path.
func LoadCache(path string) (*Cache, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoCache)
	}
	if err != nil {
		return nil, fmt.Errorf("read machine cache: %w", err)
	}
	var c cacheFormat
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("machine cache %s: %w", path, err)
	}
	if c.Version != 1 || c.Machines == nil {
		return nil, fmt.Errorf("machine cache %s: unsupported version %d", path, c.Version)
	}
	return &Cache{Updated: c.Updated, Machines: c.Machines}, nil
}

// SaveCache atomically replaces the cache at path: a temporary file in the
// same directory, fsynced, renamed over the old one, mode 0600 (it holds
// every agent's public key and unit name).
func SaveCache(path string, c Cache) error {
	data, err := json.MarshalIndent(cacheFormat{Version: 1, Updated: c.Updated.UTC(), Machines: c.Machines}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
