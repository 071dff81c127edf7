//go:build linux

package sshserver

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// TestRestoreRefusesLocalUser: another local user (nobody) connects to an
// open restore port to read the agent's rsync greeting; it must get
// nothing, while the operator's rsync (our own user) still reaches the
// agent.
func TestRestoreRefusesLocalUser(t *testing.T) {
	nobody := agenttest.AsNobody(t)
	ts := startServer(t, nil)
	port, stdin, wait := startRestore(t, ts)

	cmd := exec.Command("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+strconv.Itoa(port)+" && head -n 1 <&3")
	cmd.SysProcAttr = nobody
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("connect as nobody: %v", err)
	}
	if strings.Contains(string(out), "agent-A") {
		t.Errorf("nobody read the agent's greeting: %q", out)
	}
	greeting, err := rsyncLike(t.Context(), net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil || greeting != "agent-A" {
		t.Errorf("operator rsync: %q, %v; want agent-A", greeting, err)
	}
	stdin.Close()
	if code, _ := wait(); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}

// TestRestoreRefusesServicePorts: an agent asking for a restore on the
// port of one of the host's services (Redis here) must not make serve
// listen there, even while the service is down: root's redis-cli would
// send its AUTH line to the agent. The forward is refused and the session
// fails; the port stays free.
func TestRestoreRefusesServicePorts(t *testing.T) {
	wantRestoreRefused(t, startServer(t, nil), 6379)
}
