package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/turku-backup/turku-storage/backup"
)

// secureAtStart makes serve's files private before anything is served:
// VAR_DIR and the machine directories 0700, the key cache 0600 (the
// coordinator database is made 0600 when it is opened). Failures are
// logged, never fatal: the backups still run.
func secureAtStart(_ context.Context, w *wiring, e *backup.Engine, log *slog.Logger) {
	if err := e.SecureDirs(); err != nil {
		log.Error("making directories private failed", "err", err)
	}
	if err := privateFile(w.cachePath(), log); err != nil {
		log.Error("making the key cache private failed", "err", err)
	}
}

// privateFile removes group and other permissions from an existing file.
func privateFile(path string, log *slog.Logger) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	perm := fi.Mode().Perm()
	if !fi.Mode().IsRegular() || perm&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, perm&^0o077); err != nil {
		return err
	}
	log.Info("file mode tightened", "file", path, "from", fmt.Sprintf("%#o", perm), "to", fmt.Sprintf("%#o", perm&^0o077))
	return nil
}
