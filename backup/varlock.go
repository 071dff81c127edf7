package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ServeLockFile, in var_dir, is held (flock, exclusive) by the serve
// using that var_dir, and holds its pid.
const ServeLockFile = "serve.lock"

// LockVarDir takes var_dir for this serve: two serves on one var_dir
// would place the same machines, append to the same history and send the
// same spooled reports. The lock goes with the process, however it ends;
// release closes it sooner.
func LockVarDir(varDir string) (release func(), err error) {
	if err := os.MkdirAll(varDir, 0o700); err != nil {
		return nil, fmt.Errorf("var_dir: %w", err)
	}
	path := filepath.Join(varDir, ServeLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("var_dir %s: %w", varDir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another serve"
			if b, err := os.ReadFile(path); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
					holder = fmt.Sprintf("another serve (pid %d)", pid)
				}
			}
			return nil, fmt.Errorf("var_dir %s is in use by %s: one var_dir serves one storage unit; stop that serve or give this one its own var_dir", varDir, holder)
		}
		return nil, fmt.Errorf("var_dir %s: lock %s: %w", varDir, ServeLockFile, err)
	}
	// The pid only helps the next one's message: the lock is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
