package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/rsync"
)

func TestVersion(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed")
	}
	type out struct {
		Version, Go, Platform string
		Rsync                 rsync.Info
	}
	ctx := context.Background()
	decode := func(r runResult) out {
		t.Helper()
		var o out
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		if err := json.Unmarshal([]byte(r.stdout), &o); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		return o
	}
	// Without a configuration: rsync on PATH.
	o := decode(run(t, ctx, nil, "-c", t.TempDir(), "version", "--json"))
	want, _ := exec.LookPath("rsync")
	if o.Version == "" || o.Go != runtime.Version() || o.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("got %+v", o)
	}
	if o.Rsync.Path != want || !strings.Contains(o.Rsync.Version, ".") || o.Rsync.Protocol == "" || o.Rsync.Error != "" {
		t.Errorf("rsync %+v, want %s with its version", o.Rsync, want)
	}

	// rsync_command from the configuration, missing: said, not fatal.
	s := newSite(t, map[string]any{"rsync_command": "/nonexistent/rsync"})
	o = decode(run(t, ctx, nil, "-c", s.dir, "version", "--json"))
	if o.Rsync.Command != "/nonexistent/rsync" || o.Rsync.Error == "" || o.Rsync.Path != "" {
		t.Errorf("rsync %+v, want an error for the configured command", o.Rsync)
	}

	r := run(t, ctx, nil, "-c", t.TempDir(), "version")
	for _, line := range []string{"turku-storage " + o.Version + "\n", "  go:      " + runtime.Version(), "  rsync:   " + want + ", version "} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("version output lacks %q", line)
		}
	}
}
