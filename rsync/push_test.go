package rsync

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

func TestParseProgress(t *testing.T) {
	tests := []struct {
		line string
		want Progress
		ok   bool
	}{
		{"     1234567  45%   12.34MB/s    0:00:10 (xfr#3, to-chk=10/20)", Progress{1234567, 45, "12.34MiB/s"}, true},
		{"  1,234,567 100%    1.00kB/s    0:00:00 (xfr#1, to-chk=0/3)", Progress{1234567, 100, "1.00KiB/s"}, true},
		{"             0   0%    0.00kB/s    0:00:00", Progress{0, 0, "0.00KiB/s"}, true},
		{"  30000000 100%   20.59GB/s    0:00:01 (xfr#1, to-chk=0/2)", Progress{30000000, 100, "20.59GiB/s"}, true},
		{"sending incremental file list", Progress{}, false},
		{"rsync error: some files could not be transferred (code 23)", Progress{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseProgress(tt.line)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseProgress(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

// TestPush pushes to a writable module of a real rsync daemon (the
// agent's side of a restore): a dry run lists and sends nothing, a push
// sends with progress, and the daemon's refusals are told apart.
func TestPush(t *testing.T) {
	snap := t.TempDir()
	agenttest.WriteTree(t, snap, map[string]string{"etc/hosts": "127.0.0.1 localhost\n", "data/a.txt": "a\n"})
	dest := t.TempDir()
	d := agenttest.StartRsyncd(t, "127.0.0.1", []agenttest.Module{{Name: "turku-restore", Path: dest, User: "u", Password: "p", Writable: true}})
	push := Push{Command: "rsync", User: "u", Password: "p", Module: "turku-restore", Port: d.Port, Source: snap + "/./etc", Relative: true}
	run := func(p Push) ([]Progress, []string, error) {
		var progress []Progress
		var lines []string
		var stderr strings.Builder
		err := p.Run(t.Context(), PushOutput{
			Progress: func(pr Progress) { progress = append(progress, pr) },
			Line:     func(l string) { lines = append(lines, l) },
			Stderr:   &stderr,
		})
		t.Logf("stderr: %s", stderr.String())
		return progress, lines, err
	}

	dry := push
	dry.DryRun = true
	progress, lines, err := run(dry)
	if err != nil || len(progress) != 0 || !slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, " etc/hosts") }) {
		t.Errorf("dry run: progress %v, lines %q, %v; want etc/hosts listed, no progress", progress, lines, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "etc")); err == nil {
		t.Error("the dry run sent files")
	}

	progress, _, err = run(push)
	if err != nil || len(progress) == 0 || progress[len(progress)-1].Pct != 100 {
		t.Errorf("push: progress %v, %v; want it to end at 100%%", progress, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "etc/hosts")); string(got) != "127.0.0.1 localhost\n" {
		t.Errorf("etc/hosts on the agent: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dest, "data")); err == nil {
		t.Error("a path outside --path was sent")
	}

	tests := []struct {
		name               string
		change             func(*Push)
		auth, noSuchModule bool
	}{
		{"wrong password", func(p *Push) { p.Password = "wrong" }, true, false},
		{"unknown module", func(p *Push) { p.Module = "nope" }, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := push
			tt.change(&p)
			_, _, err := run(p)
			var re *Error
			if !errors.As(err, &re) || re.AuthFailed() != tt.auth || re.UnknownModule() != tt.noSuchModule {
				t.Errorf("got %v (%+v); want an *Error with AuthFailed %v, UnknownModule %v", err, re, tt.auth, tt.noSuchModule)
			}
		})
	}
}
