//go:build linux

package tunnel

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

// countingOpener refuses every channel and counts the attempts.
type countingOpener struct{ opened atomic.Int64 }

func (o *countingOpener) OpenChannel(string, []byte) (gossh.Channel, <-chan *gossh.Request, error) {
	o.opened.Add(1)
	return nil, nil, errors.New("refused by test")
}

func TestPeerUIDOwnConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	uid, err := peerUID(server)
	if err != nil {
		t.Fatal(err)
	}
	if uid != os.Getuid() {
		t.Errorf("got peer uid %d, want %d", uid, os.Getuid())
	}
	if err := sameUser(server); err != nil {
		t.Errorf("own connection refused: %v", err)
	}
}

// TestCheckinRefusesOtherUsers connects to a checkin endpoint as another
// user (nobody): the agent must never see that connection.
func TestCheckinRefusesOtherUsers(t *testing.T) {
	refusesOtherUsers(t, func(op Opener, log *slog.Logger) (*Endpoint, error) {
		return Checkin(context.Background(), op, "localhost", 50000, log)
	})
}

// refusesOtherUsers opens an endpoint with open and connects to it as
// another local user (nobody), with bash's /dev/tcp; the refusal must be
// logged and no channel opened to the agent.
func refusesOtherUsers(t *testing.T, open func(Opener, *slog.Logger) (*Endpoint, error)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as another user")
	}
	op := &countingOpener{}
	var logs agenttest.Output
	ep, err := open(op, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()

	// The read returns at EOF when the endpoint closes the connection.
	cmd := exec.Command("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+strconv.Itoa(ep.Port())+" && cat <&3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stderr = io.Discard
	if err := cmd.Run(); err != nil {
		t.Fatalf("connect as nobody: %v", err)
	}
	if !contains(logs.String(), "tunnel connection refused") || !contains(logs.String(), "belongs to uid 65534") {
		t.Errorf("no refusal logged: %s", logs.String())
	}
	if n := op.opened.Load(); n != 0 {
		t.Errorf("a foreign user's connection reached the agent (%d channels)", n)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
