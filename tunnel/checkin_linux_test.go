//go:build linux

package tunnel

import (
	"context"
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// connectAsChild runs script (bash; PORT replaced by the endpoint's port)
// as a child of the test, which holds its connections open until the
// test has seen want of them handled, and returns the log.
func connectAsChild(t *testing.T, script string, want int) (op *countingOpener, logs *safeBuffer) {
	t.Helper()
	handled := make(chan struct{}, 2*want)
	op = &countingOpener{handled: handled}
	logs = &safeBuffer{refusals: handled}
	ep, err := Checkin(context.Background(), op, "localhost", 50000, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()

	cmd := exec.Command("bash", "-c", strings.ReplaceAll(script, "PORT", strconv.Itoa(ep.Port())))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr safeBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v: %s", err, stderr.String())
		}
	}()
	waitHandled(t, handled, want, logs, &stderr)
	return op, logs
}

// TestCheckinAdmitsOneConnectionPerRsync: the engine's rsync (a child of
// ours) makes one connection per run; a second one from the same process
// is not rsync's and must not reach the agent.
func TestCheckinAdmitsOneConnectionPerRsync(t *testing.T) {
	op, logs := connectAsChild(t, `exec 3<>/dev/tcp/127.0.0.1/PORT && printf a >&3 &&
		exec 4<>/dev/tcp/127.0.0.1/PORT && printf b >&4 && { read -r _ || true; }`, 2)
	if n := op.opened.Load(); n != 1 {
		t.Errorf("got %d channels to the agent, want 1", n)
	}
	if !strings.Contains(logs.String(), "already made its connection") {
		t.Errorf("second connection not refused: %s", logs.String())
	}
}

// TestCheckinRefusesOtherProcesses: a process of our own user that is not
// a child of ours (here a grandchild; on a storage unit any other root
// process) does not reach the agent through a checkin endpoint.
func TestCheckinRefusesOtherProcesses(t *testing.T) {
	// Two commands, so that the outer bash forks the inner one rather
	// than replacing itself with it.
	op, logs := connectAsChild(t, `bash -c 'exec 3<>/dev/tcp/127.0.0.1/PORT && printf a >&3 && { read -r _ || true; }'; exit $?`, 1)
	if n := op.opened.Load(); n != 0 {
		t.Errorf("a grandchild's connection reached the agent (%d channels)", n)
	}
	if !strings.Contains(logs.String(), "not held by this process or one of its children") {
		t.Errorf("no refusal logged: %s", logs.String())
	}
}

// FuzzParseStat: whatever a process names itself, the fields after its
// name in /proc/PID/stat are read as the kernel wrote them.
func FuzzParseStat(f *testing.F) {
	f.Add("rsync")
	f.Add("a) S 1 (b")
	f.Add(") ) )")
	f.Add("")
	f.Fuzz(func(t *testing.T, comm string) {
		if strings.ContainsAny(comm, "\n\x00") || len(comm) > 64 {
			return // the kernel keeps 15 bytes and ends the file with one newline
		}
		const rest = "S 4242 4242 0 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10"
		got := parseStat("1234 (" + comm + ") " + rest + "\n")
		want := strings.Fields(rest)
		if !slices.Equal(got, want) {
			t.Errorf("parseStat with comm %q: got %q, want %q", comm, got, want)
		}
		if len(got) > 19 && got[19] != "987654" {
			t.Errorf("start time %q, want 987654", got[19])
		}
	})
	if got := parseStat("no parenthesis"); got != nil {
		f.Errorf("parseStat without a command name: got %q, want nil", got)
	}
}

// safeBuffer is written by the endpoint's goroutine and read by the test.
type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
	// refusals, if set, gets a value per "tunnel connection refused"
	// record.
	refusals chan<- struct{}
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refusals != nil && strings.Contains(string(p), "tunnel connection refused") {
		s.refusals <- struct{}{}
	}
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
