package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// Machines is the part of an Engine that owns VAR_DIR/machines and the
// volumes without running backups: the machine lock, the choice of a
// volume for a new machine, and the machine and name links. It is what a
// machine that arrives whole from another storage unit needs
// (transfer.Receive), placed and linked exactly as a first backup would.
type Machines struct{ e *Engine }

// noAPI stands in for the coordinator in an Engine that never pulls.
type noAPI struct{}

var errNoAPI = errors.New("backup: no coordinator API in this engine")

func (noAPI) PingCheckin(context.Context, string) (*apiclient.CheckinResponse, error) {
	return nil, errNoAPI
}

func (noAPI) SourceUpdate(context.Context, string, string, apiclient.SourceReport) error {
	return errNoAPI
}

// NewMachines checks opts as New does (API may be nil: nothing is
// pulled) and returns the machines of this storage unit. It creates
// nothing on disk.
func NewMachines(opts Options) (*Machines, error) {
	if opts.API == nil {
		opts.API = noAPI{}
	}
	e, err := New(opts)
	if err != nil {
		return nil, err
	}
	return &Machines{e: e}, nil
}

// VarDir is VAR_DIR, absolute.
func (m *Machines) VarDir() string { return m.e.varDir }

// Volumes are the configured volumes, with absolute paths.
func (m *Machines) Volumes() []Volume { return slices.Clone(m.e.volumes) }

// Lock takes the machine's lock (the one a backup holds) without waiting;
// ErrBusy when a backup or another command holds it.
func (m *Machines) Lock(uuid string) (unlock func() error, err error) {
	if err := checkComponent("machine UUID", uuid); err != nil {
		return nil, err
	}
	l, err := lockMachine(m.e.lockDir, uuid)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// ChooseVolume picks the volume a new machine goes to, as the first
// backup of a machine would (docs/protocol.md §6.1); ErrNoVolume when
// none takes new machines.
func (m *Machines) ChooseVolume() (Volume, error) { return m.e.chooseVolume() }

// Link returns the machine directory VAR_DIR/machines/<uuid> points to,
// and whether that link exists at all (pointing anywhere).
func (m *Machines) Link(uuid string) (dir string, exists bool, err error) {
	if err := checkComponent("machine UUID", uuid); err != nil {
		return "", false, err
	}
	if _, err := os.Lstat(filepath.Join(m.e.machinesDir(), uuid)); errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	dir, err = m.e.readMachineLink(uuid)
	return dir, true, err
}

// AddLink points VAR_DIR/machines/<uuid> at dir, a machine directory on a
// volume. It never replaces anything: an existing link is an error.
func (m *Machines) AddLink(uuid, dir string) error {
	if err := checkComponent("machine UUID", uuid); err != nil {
		return err
	}
	machines := m.e.machinesDir()
	if err := os.MkdirAll(machines, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", machines, err)
	}
	if err := os.Symlink(dir, filepath.Join(machines, uuid)); err != nil {
		return fmt.Errorf("machine %s: link to %s: %w", uuid, dir, err)
	}
	return atomicfile.SyncDir(machines)
}

// AddName points the name link VAR_DIR/machines/<name> at uuid under
// the rules a backup follows (never over a machine link, a real file, a
// UUID-like name or a registered machine's name; see linkMachineName).
func (m *Machines) AddName(uuid, name string) error {
	if err := checkComponent("machine name", name); err != nil {
		return err
	}
	return m.e.linkMachineName(uuid, name)
}

// Names returns the name links in VAR_DIR/machines pointing at uuid,
// sorted.
func (m *Machines) Names(uuid string) ([]string, error) {
	entries, err := os.ReadDir(m.e.machinesDir())
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(filepath.Join(m.e.machinesDir(), e.Name()))
		if err == nil && target == uuid && !strings.Contains(target, "/") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}
