package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/control"
)

// TestTwoUnitsOneHost: two serves on one host, each with its own config
// dir and var_dir and no control_socket configured, both run, and each
// `status` answers for its own unit and names it. A third, started as
// systemd starts it (RUNTIME_DIRECTORY set), listens in its runtime
// directory, and `status` from a shell (no RUNTIME_DIRECTORY) finds it
// through var_dir.
func TestTwoUnitsOneHost(t *testing.T) {
	// Not parallel: the environment is the process's.
	t.Setenv("RUNTIME_DIRECTORY", "")
	ctx := context.Background()
	status := func(s *site) (*control.Status, runResult) {
		t.Helper()
		r := run(t, ctx, nil, "-c", s.dir, "status", "--json")
		var st control.Status
		if r.code == 0 {
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
				t.Fatalf("status --json: %v\n%s", err, r.stdout)
			}
		}
		return &st, r
	}
	sites := map[string]*site{}
	for _, name := range []string{"alpha", "beta"} {
		s := newSite(t, map[string]any{"name": name, "control_socket": nil})
		sites[name] = s
		startServe(t, s)
	}
	for name, s := range sites {
		st, r := status(s)
		if r.code != 0 || st.Storage != name {
			t.Errorf("status -c %s: exit %d, storage %q; want %q", s.dir, r.code, st.Storage, name)
		}
		if fi, err := os.Lstat(filepath.Join(s.varDir, "control.sock")); err != nil || fi.Mode().Type() != os.ModeSocket {
			t.Errorf("unit %s: no socket in its var_dir: %v", name, err)
		}
	}

	// Under systemd: the socket in the runtime directory, a link to it
	// in var_dir.
	runtimeDir := filepath.Join(t.TempDir(), "run")
	t.Setenv("RUNTIME_DIRECTORY", runtimeDir)
	gamma := newSite(t, map[string]any{"name": "gamma", "control_socket": nil})
	d := startServe(t, gamma)
	if fi, err := os.Lstat(filepath.Join(runtimeDir, "control.sock")); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("no socket in RUNTIME_DIRECTORY: %v", err)
	}
	t.Setenv("RUNTIME_DIRECTORY", "")
	if st, r := status(gamma); r.code != 0 || st.Storage != "gamma" {
		t.Errorf("status from a shell: exit %d, storage %q; want gamma", r.code, st.Storage)
	}
	if st, _ := status(sites["alpha"]); st.Storage != "alpha" {
		t.Errorf("alpha's status answered by %q", st.Storage)
	}
	d.stop(t)
	if _, err := os.Lstat(filepath.Join(gamma.varDir, "control.sock")); !os.IsNotExist(err) {
		t.Errorf("link to the socket left after serve stopped: %v", err)
	}
	if _, r := status(gamma); r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("status after stop: exit %d, stderr %q", r.code, r.stderr)
	}
}
