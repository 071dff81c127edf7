package coordinator

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// privateDBFiles makes the database at path, and its WAL and shared-memory
// files, readable by our user only: it holds every secret hash. A missing
// database is created empty with mode 0600 first, since SQLite gives the
// files it creates the database file's mode. Each change is logged.
func privateDBFiles(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		f.Close()
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, 0o600); err != nil {
			return fmt.Errorf("make %s private: %w", p, err)
		}
		log.Info("file mode tightened", "file", p, "from", fmt.Sprintf("%#o", fi.Mode().Perm()), "to", "0600")
	}
	return nil
}
