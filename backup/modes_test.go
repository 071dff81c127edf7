package backup

import (
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// openTree makes dir and its parents up to the test's temporary root
// traversable by everyone, as /var/lib and a volume's mount point are, so
// that only the modes under test stand between another user and the files.
func openTree(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if d == os.TempDir() || filepath.Dir(d) == os.TempDir() {
			break
		}
	}
}

// asNobody runs a shell command as the unprivileged user nobody.
func asNobody(t *testing.T, script string) error {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Logf("as nobody: %s: %v %s", script, err, out)
	return err
}

// TestLockDirNotWritableByOthers: a local user who can create a machine's
// lock file first can lock it and so stop that machine's backups (the
// storage unit sees "another backup is running"). With no lock_dir set the
// locks live in a private directory under VAR_DIR.
func TestLockDirNotWritableByOthers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	env := newTestEnv(t, nil, func(o *Options) { o.LockDir = "" })
	openTree(t, env.varDir)
	l, err := lockMachine(env.e.lockDir, testUUID)
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	fi, err := os.Stat(env.e.lockDir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("lock dir %s mode %#o, want 0700", env.e.lockDir, fi.Mode().Perm())
	}
	next := filepath.Join(env.e.lockDir, lockName("11111111-2222-3333-4444-555555555555"))
	if err := asNobody(t, ": > "+next); err == nil {
		t.Errorf("nobody created %s", next)
	}
}

// TestSecureDirs: directories migrated from the old storage (0755) are
// made private at start, each change logged once.
func TestSecureDirs(t *testing.T) {
	var logs syncBuffer
	env := newTestEnv(t, nil, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	mdir, err := env.e.placeMachine(testUUID)
	if err != nil {
		t.Fatal(err)
	}
	machines := filepath.Join(env.varDir, "machines")
	if err := os.Symlink(testUUID, filepath.Join(machines, "web1")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{env.varDir, machines, mdir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.e.SecureDirs(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{env.varDir, machines, mdir} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o700 {
			t.Errorf("%s: mode %#o, want 0700", d, got)
		}
		if !strings.Contains(logs.String(), "dir="+d+" ") {
			t.Errorf("change of %s not logged: %s", d, logs.String())
		}
	}
	before := logs.String()
	if err := env.e.SecureDirs(); err != nil {
		t.Fatal(err)
	}
	if after := logs.String(); after != before {
		t.Errorf("second run changed something: %s", strings.TrimPrefix(after, before))
	}
	if fi, err := os.Lstat(filepath.Join(machines, "web1")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("name link touched: %v %v", fi, err)
	}
}

// TestSecureDirsWarnsSharedLockDir: a lock_dir other users can write to
// (the old code's /run/lock) is warned about at start, and left as it is.
func TestSecureDirsWarnsSharedLockDir(t *testing.T) {
	var logs syncBuffer
	shared := filepath.Join(t.TempDir(), "lock")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t, nil, func(o *Options) {
		o.LockDir = shared
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if err := env.e.SecureDirs(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "lock_dir is writable by other local users") {
		t.Errorf("no warning: %s", logs.String())
	}
	if fi, err := os.Stat(shared); err != nil || fi.Mode()&fs.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("shared lock dir changed: %v %v", fi.Mode(), err)
	}
}
