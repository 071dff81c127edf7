package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/turku-backup/turku-storage/sessionlog"
)

// ErrBusy is returned by Pull when another backup of the same machine
// holds its lock. Like the old turku-storage-ping, a second session fails
// at once instead of queueing behind the first.
var ErrBusy = errors.New("another backup of this machine is running")

// lockName is the old turku-storage-ping lock file name, so that an old
// and a new storage process on one host exclude each other.
func lockName(uuid string) string { return "turku-storage-ping-" + uuid + ".lock" }

// machineLock is a held per-machine lock.
type machineLock struct{ f *os.File }

// lockMachine takes the machine's lock without waiting. The lock is an
// open-file-description fcntl lock (see tryLock): it conflicts with the
// POSIX lockf lock the old Python code took on the same file and, unlike
// lockf, with other sessions of this very process.
func lockMachine(dir, uuid string) (*machineLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	path := filepath.Join(dir, lockName(uuid))
	// O_NOFOLLOW: lock directories such as /run/lock are world-writable.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|nofollow, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrBusy) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The old code wrote the holder's PID, right-aligned in 10 columns.
	// Written over the last holder's (the same 11 bytes, as a rule), then
	// cut to length: no block freed and allocated again on each session.
	pid := fmt.Appendf(nil, "%10d\n", os.Getpid())
	if _, err := f.WriteAt(pid, 0); err == nil {
		f.Truncate(int64(len(pid)))
	}
	return &machineLock{f: f}, nil
}

// Unlock releases the lock. The file stays: removing it would let a
// process that opened it just before lock a file nobody else sees.
func (l *machineLock) Unlock() error {
	uerr := unlock(l.f)
	return errors.Join(uerr, l.f.Close())
}

// acquireSlot waits for one of the max_concurrent_backups rsync slots,
// telling the agent when it has to wait, and returns the function that
// frees it.
func (e *Engine) acquireSlot(ctx context.Context, log *sessionlog.Logger, unit, source string) (func(), error) {
	return e.slots.acquire(ctx, log, unit, source)
}
