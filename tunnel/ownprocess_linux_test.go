//go:build linux

package tunnel

import (
	"bufio"
	"context"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/testlog"
	gossh "golang.org/x/crypto/ssh"
)

// greeter plays the agent's rsync daemon: it greets every connection
// with tag and reads until the storage side is done.
func greeter(tag string) func(ch gossh.Channel) {
	return func(ch gossh.Channel) {
		io.WriteString(ch, tag+"\n")
		io.Copy(io.Discard, ch)
	}
}

// childGreeting connects to port from a child process of ours (root in CI,
// like the operator's sudo rsync, or the engine's rsync) and returns the
// first line it reads.
func childGreeting(t *testing.T, port int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+strconv.Itoa(port)+" && head -n 1 <&3")
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("child's connection: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// ownConnection is serve's own process meeting the endpoint, as its API
// client would when the endpoint holds the API's port: it sends what an
// API call sends and reports what came back before the endpoint closed
// the connection.
func ownConnection(t *testing.T, addr net.Addr) string {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /v1/storage_update_config HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n{\"storage\": {\"secret\": \"S\"}}")
	// Bounds the test only: a refused connection is closed at once.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

// wantOnlyChildReaches checks that serve's own connection to ep reads
// nothing and opens no channel to agent a (which greets "agent-A"), while
// a child process, who, reads the greeting.
func wantOnlyChildReaches(t *testing.T, a *agent, ep *Endpoint, who string) {
	t.Helper()
	if got := ownConnection(t, ep.Addr()); got != "" {
		t.Errorf("serve's own connection read %q from the agent", got)
	}
	if n := len(a.seen()); n != 0 {
		t.Errorf("serve's own connection opened %d channels to the agent", n)
	}
	if got := childGreeting(t, ep.Port()); got != "agent-A" {
		t.Errorf("%s read %q, want agent-A", who, got)
	}
}

// TestRestoreRefusesOwnProcess: with turku-api on the storage unit's host
// stopped for a moment, an agent's restore took the API's port; serve's
// next storage_update_config, storage secret included, must not reach the
// agent. Root's rsync, from another process, still does.
func TestRestoreRefusesOwnProcess(t *testing.T) {
	a := newAgent(t, greeter("agent-A"))
	var ep *Endpoint
	var err error
	for try := 0; ep == nil; try++ {
		ep, err = Restore(context.Background(), a.server, "localhost", freePort(t), testlog.New(t))
		if err != nil && try == 5 {
			t.Fatal(err)
		}
	}
	defer ep.Close()
	wantOnlyChildReaches(t, a, ep, "root's rsync")
}

// TestCheckinRefusesOwnProcess: a checkin endpoint is for the engine's
// rsync, a child of serve; serve's own connections (an API call meeting
// an endpoint on the API's port) never reach the agent.
func TestCheckinRefusesOwnProcess(t *testing.T) {
	a := newAgent(t, greeter("agent-A"))
	ep, err := Checkin(context.Background(), a.server, "localhost", 51234, testlog.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	wantOnlyChildReaches(t, a, ep, "the engine's rsync")
}
