package backup

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
)

// TestNameLinkIntruder: a hostile machine sets its environment, service and
// unit names to those of another, still registered machine. Its checkins
// must not repoint machines/prod-www-web1, which an operator restoring
// "web1" would follow into the intruder's files; the conflict is logged
// once.
func TestNameLinkIntruder(t *testing.T) {
	const victim = "11111111-2222-3333-4444-555555555555"
	rec := t.TempDir()
	var logs syncBuffer
	env := newTestEnv(t, map[string]apiclient.Source{"etc": {}}, func(o *Options) {
		o.RsyncCommand = recordingRsync(t, rec, 0, "")
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		o.Registered = func(uuid string) bool { return uuid == victim || uuid == testUUID }
	})
	machines := filepath.Join(env.varDir, "machines")
	if err := os.MkdirAll(machines, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(machines, "prod-www-web1")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := env.e.Pull(t.Context(), env.request(creds("etc"))); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.Readlink(link); got != victim {
		t.Errorf("prod-www-web1 -> %q, want the registered machine %q", got, victim)
	}
	if n := strings.Count(logs.String(), "machine name link conflict"); n != 1 {
		t.Errorf("conflict logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestNameLinkRegistration(t *testing.T) {
	const other = "11111111-2222-3333-4444-555555555555"
	tests := []struct {
		name       string
		registered func(string) bool
		want       string
	}{
		{name: "registered machine keeps its name", registered: func(u string) bool { return u == other }, want: other},
		{name: "deregistered machine's name is taken", registered: func(u string) bool { return u != other }, want: testUUID},
		{name: "unknown registration keeps the old link", registered: nil, want: other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, nil, func(o *Options) { o.Registered = tt.registered })
			machines := filepath.Join(env.varDir, "machines")
			if err := os.MkdirAll(machines, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, filepath.Join(machines, "web1")); err != nil {
				t.Fatal(err)
			}
			if err := env.e.linkMachineName(testUUID, "web1"); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.Readlink(filepath.Join(machines, "web1")); got != tt.want {
				t.Errorf("web1 -> %q, want %q", got, tt.want)
			}
		})
	}
}
