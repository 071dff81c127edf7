//go:build linux

package tunnel

import (
	"context"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// TestRestoreRefusesOtherUsers connects to a restore port as another local
// user (nobody), as a user reading the agent's rsync greeting would: the
// agent must never see that connection, while our own user's still goes
// through.
func TestRestoreRefusesOtherUsers(t *testing.T) {
	refusesOtherUsers(t, func(op Opener, log *slog.Logger) (*Endpoint, error) {
		// Another process may take the free port before Restore; retry.
		for try := 0; ; try++ {
			ep, err := Restore(context.Background(), op, "localhost", freePort(t), log)
			if err == nil || try == 5 {
				return ep, err
			}
		}
	})
}

// TestRestoreRefusesOrphanedSocket: a local user connects, writes and
// closes at once; by the time the storage unit looks, the user's socket
// has no file any more and /proc/net/tcp shows it as root's (uid 0, inode
// 0). Root's rsync is admitted to a restore port, an orphan is not.
func TestRestoreRefusesOrphanedSocket(t *testing.T) {
	nobody := agenttest.AsNobody(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cmd := exec.Command("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+strconv.Itoa(port)+" && echo hi >&3 && exec 3>&-")
	cmd.SysProcAttr = nobody
	if err := cmd.Run(); err != nil {
		t.Fatalf("connect as nobody: %v", err)
	}
	// The process is gone: its socket is an orphan now.
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := restoreAdmit(c, false); err == nil {
		t.Error("an orphaned socket of another user was admitted")
	}
}
