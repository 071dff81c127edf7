package sshserver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/tunnel"
	gossh "golang.org/x/crypto/ssh"
)

// TestOneCheckinPerMachine: a second checkin of the same machine is
// refused with a message while the first runs on undisturbed; another
// machine is not affected.
func TestOneCheckinPerMachine(t *testing.T) {
	ts := startServer(t, nil)
	pulling := make(chan struct{}, 1)
	release := make(chan struct{})
	ts.puller.pull = func(ctx context.Context, req PullRequest) error {
		if req.Machine != uuidA {
			return nil
		}
		pulling <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	first := ts.dial(t, ts.keys[uuidA])
	forwardRequest(first, "localhost", 51234)
	done := make(chan int, 1)
	go func() {
		code, _ := runSession(t, first, checkinRequest(51234))
		done <- code
	}()
	<-pulling

	wantRefusal(t, ts.dial(t, ts.keys[uuidA]), 51235, checkinRequest(51235),
		"ERROR: A checkin for this machine is already running on this storage unit", "second checkin")

	// Machine V checks in meanwhile.
	wantCheckin(t, ts.dial(t, ts.keys[uuidV]), 51236, "other machine")

	close(release)
	if code := <-done; code != 0 {
		t.Errorf("first checkin exit %d, want 0 (undisturbed)", code)
	}
	if got := len(ts.puller.machines()); got != 2 {
		t.Errorf("%d checkins ran, want 2", got)
	}
	// Once done, the machine may check in again.
	wantCheckin(t, ts.dial(t, ts.keys[uuidA]), 51237, "checkin after the first ended")
}

// TestOneRestorePerMachine: the same for restore sessions, which otherwise
// a machine could open by the hundred and hold with keepalives.
func TestOneRestorePerMachine(t *testing.T) {
	ts := startServer(t, nil)
	_, stdin, wait := startRestore(t, ts)

	wantRefusal(t, ts.dial(t, ts.keys[uuidA]), 51240, `{"action": "restore", "port": 51240}`+"\n.\n",
		"ERROR: A restore for this machine is already running on this storage unit", "second restore")

	stdin.Close()
	if code, rest := wait(); code != 0 || !strings.HasSuffix(rest, "INFO: Restore mode finished") {
		t.Errorf("first restore: exit %d, stderr %q; want undisturbed", code, rest)
	}
}

// TestRestoresLeaveRoomForCheckins: restores take at most half of
// MaxSessions, so checkins always find room.
func TestRestoresLeaveRoomForCheckins(t *testing.T) {
	// 3 sessions, of which restores may take 1. (With 2, the refused
	// restore's session may not have given its slot back yet when the
	// checkin below asks for one.)
	ts := startServer(t, func(o *Options) { o.MaxSessions = 3 })
	_, stdin, wait := startRestore(t, ts) // machine A, the one restore slot
	defer func() {
		stdin.Close()
		wait()
	}()

	wantRefusal(t, ts.dial(t, ts.keys[uuidV]), 51250, `{"action": "restore", "port": 51250}`+"\n.\n",
		"ERROR: Too many restore sessions on this storage unit", "restore beyond the share")
	wantCheckin(t, ts.dial(t, ts.keys[uuidV]), 51251, "checkin beside the restore")
}

// TestRestoreMaxLifetime: a restore left open ends after its time limit,
// and the agent is told.
func TestRestoreMaxLifetime(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.RestoreMaxLifetime = 300 * time.Millisecond })
	_, _, wait := startRestore(t, ts) // stdin stays open, as a forgotten terminal's
	code, rest := wait()
	want := fmt.Sprintf("ERROR: Restore mode ended: the storage unit's time limit of %s was reached", 300*time.Millisecond)
	if code != 1 || !strings.Contains(rest, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, rest, want)
	}
	// The slot is free again.
	_, stdin, wait := startRestore(t, ts)
	stdin.Close()
	if code, _ := wait(); code != 0 {
		t.Errorf("next restore exit %d", code)
	}
}

// TestReverseForwardPorts: only ports an agent can ask for (turku-agent
// picks 49152-65535). Below them are the host's own services: a restore
// on 6379 carried root's Redis AUTH line to the agent, one on turku-api's
// 8000, while the API was down, serve's storage_update_config call.
func TestReverseForwardPorts(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxForwards = 10 })
	c := ts.dial(t, ts.keys[uuidA])
	tests := []struct {
		name   string
		port   uint32
		wantOK bool
	}{
		{name: "ssh", port: 22},
		{name: "privileged", port: 1023},
		{name: "zero", port: 0},
		{name: "beyond 65535", port: 70000},
		{name: "lowest unprivileged", port: 1024},
		{name: "redis", port: 6379},
		{name: "turku-api", port: 8000},
		{name: "just below the agent's range", port: 49151},
		{name: "lowest of the agent's range", port: 49152, wantOK: true},
		{name: "agent's range", port: 51234, wantOK: true},
		{name: "highest", port: 65535, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, _, err := c.SendRequest("tcpip-forward", true, gossh.Marshal(&tcpipForwardRequest{BindAddr: "localhost", BindPort: tt.port}))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK {
				t.Errorf("got %v, want %v", ok, tt.wantOK)
			}
		})
	}
}

// TestReverseForwardPortsConfigured: tunnel_port_range narrows the ports
// further, and an invalid range admits none.
func TestReverseForwardPortsConfigured(t *testing.T) {
	tests := []struct {
		name   string
		ports  tunnel.PortRange
		port   uint32
		wantOK bool
	}{
		{name: "inside", ports: tunnel.PortRange{Min: 50000, Max: 50010}, port: 50005, wantOK: true},
		{name: "outside", ports: tunnel.PortRange{Min: 50000, Max: 50010}, port: 51234},
		{name: "invalid range", ports: tunnel.PortRange{Min: 80, Max: 65535}, port: 51234},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, func(o *Options) { o.TunnelPorts = tt.ports })
			c := ts.dial(t, ts.keys[uuidA])
			ok, err := forwardRequest(c, "localhost", tt.port)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK {
				t.Errorf("port %d in %s: got %v, want %v", tt.port, tt.ports, ok, tt.wantOK)
			}
		})
	}
}
