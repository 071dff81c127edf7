//go:build linux

package tunnel

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// TestRestoreUnderLocalFlood: another local user (nobody) floods an open
// restore port with connections it holds open. Root's rsync, connecting
// in the middle of it, must still reach the agent, and the refusals must
// be summarised in the log, not written one line each. The time root's
// connection took is logged, with the same connection's time without a
// flood, for docs/operations.md; nothing is asserted on it.
func TestRestoreUnderLocalFlood(t *testing.T) {
	nobody := agenttest.AsNobody(t)
	flood := 2000
	if s := os.Getenv("TURKU_TEST_FLOOD"); s != "" {
		flood, _ = strconv.Atoi(s)
	}
	// The attacker inherits our limit on open files and holds one per
	// connection.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && int(lim.Cur)-64 < flood {
		flood = max(int(lim.Cur)-64, 100)
	}
	a := newAgent(t, greeter("agent-A"))
	var refused atomic.Int64
	allRefused := make(chan struct{})
	var logs agenttest.Output
	var ep *Endpoint
	var err error
	for try := 0; ep == nil; try++ {
		ep, err = Restore(context.Background(), a.server, "localhost", freePort(t), slog.New(slog.NewTextHandler(&logs, nil)),
			onRefused(func(error) {
				if refused.Add(1) == int64(flood) {
					close(allRefused)
				}
			}))
		if err != nil && try == 5 {
			t.Fatal(err)
		}
	}
	defer ep.Close()

	start := time.Now()
	if got := childGreeting(t, ep.Port()); got != "agent-A" {
		t.Fatalf("root's rsync without a flood read %q, want agent-A", got)
	}
	t.Logf("root's connection without a flood: %v", time.Since(start))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	script := `for i in $(seq ` + strconv.Itoa(flood) + `); do
		exec {fd}<>/dev/tcp/127.0.0.1/` + strconv.Itoa(ep.Port()) + ` || exit 1
		[ "$i" = ` + strconv.Itoa(flood/2) + ` ] && echo half
	done
	echo done
	read -r _ || true`
	attacker := exec.CommandContext(ctx, "bash", "-c", script)
	attacker.SysProcAttr = nobody
	var stderr agenttest.Output
	attacker.Stderr = &stderr
	stdin, stdout := agenttest.StartPiped(t, attacker)
	defer func() {
		stdin.Close()
		if err := attacker.Wait(); err != nil {
			t.Errorf("attacker: %v: %s", err, stderr.String())
		}
	}()
	said := bufio.NewScanner(stdout)
	if !said.Scan() || said.Text() != "half" {
		t.Fatalf("attacker: %q: %s", said.Text(), stderr.String())
	}
	start = time.Now()
	if got := childGreeting(t, ep.Port()); got != "agent-A" {
		t.Errorf("root's rsync under a flood read %q, want agent-A", got)
	}
	t.Logf("root's connection under a flood of %d connections by another user: %v", flood, time.Since(start))
	if !said.Scan() || said.Text() != "done" {
		t.Fatalf("attacker: %q: %s", said.Text(), stderr.String())
	}
	select {
	case <-allRefused:
	case <-ctx.Done():
		t.Fatalf("%d of %d flood connections refused", refused.Load(), flood)
	}
	if n := len(a.seen()); n != 2 {
		t.Errorf("%d channels to the agent, want root's 2", n)
	}
	ep.Close()
	if got := refusalsLogged(t, logs.String()); got != int64(flood) {
		t.Errorf("log accounts for %d refusals, want %d", got, flood)
	}
	if lines := strings.Count(logs.String(), "tunnel connection"); lines > 3 {
		t.Errorf("%d log lines for %d refused connections within a minute, want one and a summary: %s", lines, flood, firstLines(logs.String(), 5))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
