package rsync

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// TestCmdStop cancels a stand-in rsync whose leader ignores SIGTERM and
// whose forked child (rsync's receiver) exits on it: the child must get
// SIGTERM too (the whole process group is signalled, not the leader
// only), and the leader is ended with SIGKILL after the grace period.
func TestCmdStop(t *testing.T) {
	script := agenttest.Script(t, `sh -c 'trap "echo child got TERM; exit 0" TERM; echo child ready; while :; do sleep 1; done' &
trap '' TERM
echo leader ready
wait
while :; do sleep 1; done
`)
	var out agenttest.Output
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := Cmd{Command: script, Stdout: &out, Stderr: &out}.Run(ctx)
		out.Close()
		done <- result{code, err}
	}()
	out.WaitFor(t, "child ready\n", 1, time.Minute)
	out.WaitFor(t, "leader ready\n", 1, time.Minute)
	cancel()
	r := <-done
	if r.err != nil || r.code != -1 {
		t.Errorf("Run = %d, %v; want -1 (killed), nil", r.code, r.err)
	}
	if !strings.Contains(out.String(), "child got TERM\n") {
		t.Errorf("the child never got SIGTERM:\n%s", out.String())
	}
}

// TestCmdEnvironment: rsync sees RSYNC_PASSWORD and PATH, nothing else
// of ours.
func TestCmdEnvironment(t *testing.T) {
	t.Setenv("RSYNC_RSH", "should-not-pass")
	var out strings.Builder
	code, err := Cmd{Command: agenttest.Script(t, "env | sort; exit 3"), Password: "s3cret", Stdout: &out}.Run(t.Context())
	if err != nil || code != 3 {
		t.Fatalf("Run = %d, %v; want 3, nil", code, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		name, _, _ := strings.Cut(line, "=")
		switch name {
		case "PATH", "PWD", "SHLVL", "_": // PATH ours, the rest the shell's own
		case "RSYNC_PASSWORD":
			if line != "RSYNC_PASSWORD=s3cret" {
				t.Errorf("got %q", line)
			}
		default:
			t.Errorf("rsync's environment has %q", line)
		}
	}
	if _, err := (Cmd{Command: "/nonexistent/rsync"}).Run(t.Context()); err == nil || !strings.Contains(err.Error(), "run /nonexistent/rsync") {
		t.Errorf("missing binary: %v", err)
	}
}
