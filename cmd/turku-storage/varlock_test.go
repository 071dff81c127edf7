package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/backup"
)

// TestServeRefusesSharedVarDir: a second serve on the var_dir of a
// running one stops at once, naming the var_dir and the pid holding it,
// before it changes anything, and leaves the first one serving.
func TestServeRefusesSharedVarDir(t *testing.T) {
	s := newSite(t, nil)
	d := startServe(t, s)
	// The second has a control socket of its own, as a second
	// configuration naming the same var_dir would.
	t.Setenv("TURKU_STORAGE_CONTROL_SOCKET", controlSocketPath(t, t.TempDir()))

	// A bound, not a pause: before the lock, a second serve ran on.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := run(t, ctx, nil, "-c", s.dir, "serve")
	want := fmt.Sprintf("var_dir %s is in use by another serve (pid %d)", s.varDir, os.Getpid())
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("second serve: exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
	if ctx.Err() != nil {
		t.Errorf("second serve ran until the test's bound")
	}
	if strings.Contains(r.stderr, "level=") {
		t.Errorf("second serve went on before refusing:\n%s", r.stderr)
	}
	if r := d.stop(t); r.code != 0 {
		t.Errorf("first serve: exit %d", r.code)
	}

	// Once the first has stopped, the lock file left behind is no bar.
	if _, err := os.Stat(filepath.Join(s.varDir, backup.ServeLockFile)); err != nil {
		t.Fatal(err)
	}
	d2 := startServe(t, s)
	if r := d2.stop(t); r.code != 0 {
		t.Errorf("serve after the first stopped: exit %d", r.code)
	}
}
