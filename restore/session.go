package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/turku-backup/turku-storage/control"
	"github.com/turku-backup/turku-storage/monitor"
)

// NoSessionError says the machine has no restore session (any more): the
// agent must start restore mode (again). `restore` exits 3 on it.
type NoSessionError struct{ msg string }

func (e *NoSessionError) Error() string { return e.msg }

// FindSession asks the serve on socket for the newest restore session of
// machine uuid (named name for people), waiting up to wait for one to
// start; notice is told that it waits.
func FindSession(ctx context.Context, socket, uuid, name string, wait time.Duration, notice io.Writer) (*monitor.Session, error) {
	st, err := control.GetStatus(ctx, socket)
	if err != nil {
		return nil, err
	}
	var found *monitor.Session
	for i, a := range st.Restores {
		if a.Machine == uuid && (found == nil || a.Since.After(found.Since)) {
			found = &st.Restores[i]
		}
	}
	if found != nil {
		return found, nil
	}
	msg := fmt.Sprintf("machine %s (%s) has no restore session: run \"turku-agent-ping --restore\" on it", name, uuid)
	noSession := &NoSessionError{msg}
	if wait <= 0 {
		return nil, noSession
	}
	fmt.Fprintf(notice, "Machine %s has no restore session yet. Run \"turku-agent-ping --restore\" on it; waiting up to %s...\n", name, wait)
	wctx, cancel := context.WithTimeoutCause(ctx, wait, noSession)
	defer cancel()
	a, err := control.WaitRestore(wctx, socket, uuid)
	if err != nil {
		if errors.Is(context.Cause(wctx), noSession) {
			return nil, &NoSessionError{fmt.Sprintf("after %s: %s", wait, msg)}
		}
		return nil, err
	}
	return a, nil
}

// Recheck asks serve again, right before connecting, whether sess (found
// before the password was read) still runs. The password belongs to that
// session: a newer one of the same machine has another.
func Recheck(ctx context.Context, socket, uuid, name string, sess *monitor.Session) error {
	st, err := control.GetStatus(ctx, socket)
	if err != nil {
		return err
	}
	var newer *monitor.Session
	for i, a := range st.Restores {
		if a.Machine != uuid {
			continue
		}
		if a.RestorePort == sess.RestorePort && a.Since.Equal(sess.Since) && a.Remote == sess.Remote {
			return nil
		}
		newer = &st.Restores[i]
	}
	if newer != nil {
		return &NoSessionError{fmt.Sprintf("the restore session of machine %s (%s) on port %d ended while the password was read; a newer one runs on port %d with its own password: run restore again with it",
			name, uuid, sess.RestorePort, newer.RestorePort)}
	}
	return &NoSessionError{fmt.Sprintf("the restore session of machine %s (%s) on port %d ended while the password was read: run \"turku-agent-ping --restore\" on it again", name, uuid, sess.RestorePort)}
}
