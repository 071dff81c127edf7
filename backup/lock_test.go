package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/turku-backup/turku-storage/apiclient"
	"golang.org/x/sys/unix"
)

func TestPullLockBusy(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, map[string]apiclient.Source{"etc": {}}, nil)
	held, err := lockMachine(env.e.lockDir, testUUID)
	if err != nil {
		t.Fatal(err)
	}
	err = env.e.Pull(t.Context(), env.request(creds("etc")))
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
	if diff := cmp.Diff([]string{"ERROR: Another backup of this machine is already running"}, env.agent.lines()); diff != "" {
		t.Error(diff)
	}
	held.Unlock()
	if _, err := os.Stat(filepath.Join(env.e.lockDir, "turku-storage-ping-"+testUUID+".lock")); err != nil {
		t.Errorf("lock file has the old name? %v", err)
	}
}

func TestPullWaitsForSlot(t *testing.T) {
	t.Parallel()
	rec := t.TempDir()
	env := newTestEnv(t, map[string]apiclient.Source{"etc": {}}, func(o *Options) {
		o.RsyncCommand = recordingRsync(t, rec, 0, "")
		o.MaxConcurrent = 1
	})
	waiting := make(chan struct{})
	env.agent.onWrite = func(s string) {
		if strings.Contains(s, "Waiting for a free backup slot") {
			close(waiting)
		}
	}
	takeSlot(t, env.e.slots) // another machine's rsync
	done := make(chan error, 1)
	go func() { done <- env.e.Pull(context.Background(), env.request(creds("etc"))) }()
	<-waiting
	if _, err := os.Stat(filepath.Join(rec, "args")); err == nil {
		t.Fatal("rsync ran while the only slot was taken")
	}
	env.e.slots.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if env.e.slots.Running() != 0 {
		t.Errorf("slot not released")
	}
}

func TestPullCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, map[string]apiclient.Source{"etc": {}, "home": {}}, func(o *Options) { o.MaxConcurrent = 1 })
	ctx, cancel := context.WithCancelCause(t.Context())
	env.agent.onWrite = func(s string) {
		if strings.Contains(s, "Waiting for a free backup slot") {
			cancel(errors.New("shutdown"))
		}
	}
	takeSlot(t, env.e.slots)
	err := env.e.Pull(ctx, env.request(creds("etc", "home")))
	if err == nil || !strings.Contains(err.Error(), "etc, home: shutdown") {
		t.Fatalf("got %v", err)
	}
	rep := env.api.onlyReport(t) // etc is reported failed; home stays due
	if rep.Success || rep.Summary != "waiting for a backup slot: interrupted: shutdown\n" {
		t.Errorf("report %+v", rep)
	}
}

func TestLockExcludesOldPythonLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Python's fcntl.lockf is a classic POSIX record lock; take one the
	// same way and check our lock respects it.
	f, err := os.OpenFile(filepath.Join(dir, lockName(testUUID)), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if _, err := lockMachine(dir, testUUID); !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy while a POSIX lock is held", err)
	}
	lk.Type = syscall.F_UNLCK
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	l, err := lockMachine(dir, testUUID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockMachine(dir, testUUID); !errors.Is(err, ErrBusy) {
		t.Errorf("second lock in one process: got %v, want ErrBusy", err)
	}
	if got := readFile(t, filepath.Join(dir, lockName(testUUID))); len(got) != 11 {
		t.Errorf("lock file %q, want the PID in 10 columns", got)
	}
	l.Unlock()
	l2, err := lockMachine(dir, testUUID)
	if err != nil {
		t.Fatalf("relock after unlock: %v", err)
	}
	l2.Unlock()
}

func TestLockRefusesSymlink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, lockName(testUUID))); err != nil {
		t.Fatal(err)
	}
	if _, err := lockMachine(dir, testUUID); err == nil || !errors.Is(err, unix.ELOOP) {
		t.Errorf("got %v, want ELOOP", err)
	}
	if diff := cmp.Diff("precious", readFile(t, target)); diff != "" {
		t.Error(diff)
	}
}

func takeSlot(t *testing.T, s *Slots) {
	t.Helper()
	ok, w, _ := s.tryAcquire()
	if !ok {
		s.cancel(w)
		t.Fatal("no free slot")
	}
}

// TestLockPIDReplacesLongerContent: the PID is written over whatever the
// file held, and what was longer is cut off.
func TestLockPIDReplacesLongerContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, lockName(testUUID))
	if err := os.WriteFile(path, []byte("1234567890123456789\nleft over by something else\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := lockMachine(dir, testUUID)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if got, want := readFile(t, path), fmt.Sprintf("%10d\n", os.Getpid()); got != want {
		t.Errorf("lock file %q, want %q", got, want)
	}
}
