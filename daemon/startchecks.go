package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/rsync"
)

// secureAtStart makes serve's files private before anything is served:
// VAR_DIR and the machine directories 0700, the key cache 0600 (the
// coordinator database is made 0600 when it is opened); and it warns about
// an rsync older than its client-side security fixes. Failures are
// logged, never fatal: the backups still run.
func secureAtStart(ctx context.Context, w *Wiring, e *backup.Engine, log *slog.Logger) {
	if err := e.SecureDirs(); err != nil {
		log.Error("making directories private failed", "err", err)
	}
	if err := privateFile(w.cachePath(), log); err != nil {
		log.Error("making the key cache private failed", "err", err)
	}
	warnOldRsync(ctx, w.cfg.RsyncCommand, log)
}

// warnOldRsync warns when rsync_command reports a release without the
// client-side fixes a storage unit needs: it runs as root as the client
// of an agent's daemon. Distributions backport fixes without changing the
// version, hence a warning and not a refusal.
func warnOldRsync(ctx context.Context, command string, log *slog.Logger) {
	b, err := rsync.Find(ctx, command)
	if err != nil {
		log.Warn("cannot tell whether rsync has its security fixes", "rsync", command, "fixed", rsync.FixedVersion, "err", err)
		return
	}
	v := b.Version
	missing := v.MissingFixes()
	if len(missing) == 0 {
		log.Debug("rsync version", "rsync", command, "version", v.String())
		return
	}
	cves := make([]string, len(missing))
	for i, f := range missing {
		cves[i] = f.CVE
	}
	log.Warn("rsync is older than its security fixes: an agent's rsync daemon may write outside the destination; upgrade, or check that the distribution backported the fixes",
		"rsync", command, "version", v.String(), "fixed", rsync.FixedVersion, "cves", strings.Join(cves, ","))
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
