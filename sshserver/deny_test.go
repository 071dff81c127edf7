package sshserver

import (
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

// TestDeniedChannels: ssh -L, -D, -W and unknown channel types are refused.
func TestDeniedChannels(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := ts.dial(t, ts.keys[uuidA])
	tests := []struct {
		name     string
		typ      string
		payload  []byte
		wantText string
	}{
		{name: "direct-tcpip (ssh -L, -D)", typ: "direct-tcpip", payload: gossh.Marshal(&struct {
			Host       string
			Port       uint32
			OriginAddr string
			OriginPort uint32
		}{"127.0.0.1", 22, "127.0.0.1", 5555}), wantText: "administratively prohibited"},
		{name: "direct-streamlocal", typ: "direct-streamlocal@openssh.com", payload: gossh.Marshal(&struct {
			Path     string
			Reserved string
			Port     uint32
		}{"/run/turku.sock", "", 0}), wantText: "administratively prohibited"},
		{name: "x11 from the client", typ: "x11", wantText: "unknown channel type"},
		{name: "made up", typ: "turku@example.com", wantText: "unknown channel type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, _, err := c.OpenChannel(tt.typ, tt.payload)
			if err == nil {
				ch.Close()
				t.Fatal("channel opened")
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("got %v, want %q", err, tt.wantText)
			}
		})
	}
	// And the connection still works for what it is for.
	wantCheckin(t, c, 51234, "checkin after refusals")
}

func TestGlobalRequests(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(o *Options) { o.MaxForwards = 2 })
	c := ts.dial(t, ts.keys[uuidA])
	tests := []struct {
		name   string
		typ    string
		bind   string
		port   uint32
		wantOK bool
	}{
		{name: "OpenSSH -R PORT:host:PORT", typ: "tcpip-forward", bind: "localhost", port: 51234, wantOK: true},
		{name: "same forward again", typ: "tcpip-forward", bind: "localhost", port: 51234, wantOK: false},
		{name: "all interfaces", typ: "tcpip-forward", bind: "0.0.0.0", port: 51235},
		{name: "public address", typ: "tcpip-forward", bind: "192.0.2.1", port: 51235},
		{name: "IPv6 any", typ: "tcpip-forward", bind: "::", port: 51235},
		{name: "port 0 (server picks)", typ: "tcpip-forward", bind: "localhost", port: 0},
		{name: "IPv4 loopback", typ: "tcpip-forward", bind: "127.0.0.1", port: 51236, wantOK: true},
		{name: "beyond MaxForwards", typ: "tcpip-forward", bind: "::1", port: 51237},
		{name: "cancel unknown", typ: "cancel-tcpip-forward", bind: "localhost", port: 1},
		{name: "cancel", typ: "cancel-tcpip-forward", bind: "127.0.0.1", port: 51236, wantOK: true},
		{name: "room again after cancel", typ: "tcpip-forward", bind: "::1", port: 51237, wantOK: true},
		{name: "streamlocal", typ: "streamlocal-forward@openssh.com"},
		{name: "keepalive", typ: "keepalive@openssh.com"},
		{name: "no-more-sessions", typ: "no-more-sessions@openssh.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, _, err := c.SendRequest(tt.typ, true, gossh.Marshal(&tcpipForwardRequest{BindAddr: tt.bind, BindPort: tt.port}))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK {
				t.Errorf("got %v, want %v", ok, tt.wantOK)
			}
		})
	}
	// Nothing was bound for any of them.
	c2 := ts.dial(t, ts.keys[uuidV])
	if ok, err := forwardRequest(c2, "localhost", 51234); !ok || err != nil {
		t.Errorf("another agent's forward of the same port: %v %v", ok, err)
	}
}

func TestDeniedSessionRequests(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := ts.dial(t, ts.keys[uuidA])
	sess := newSession(t, c)
	tests := []struct {
		name    string
		typ     string
		payload []byte
	}{
		{name: "pty", typ: "pty-req", payload: gossh.Marshal(&struct {
			Term          string
			Columns, Rows uint32
			Width, Height uint32
			Modes         string
		}{"xterm", 80, 24, 0, 0, ""})},
		{name: "agent forwarding", typ: "auth-agent-req@openssh.com"},
		{name: "x11", typ: "x11-req", payload: gossh.Marshal(&struct {
			Single        bool
			Proto, Cookie string
			Screen        uint32
		}{false, "MIT-MAGIC-COOKIE-1", "00", 0})},
		{name: "sftp", typ: "subsystem", payload: gossh.Marshal(&struct{ Name string }{"sftp"})},
		{name: "env", typ: "env", payload: gossh.Marshal(&struct{ Name, Value string }{"LANG", "C.UTF-8"})},
		{name: "signal", typ: "signal", payload: gossh.Marshal(&struct{ Signal string }{"TERM"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := sess.SendRequest(tt.typ, true, tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				t.Errorf("%s granted", tt.typ)
			}
		})
	}
	// Still usable afterwards, like OpenSSH after a refused pty.
	forwardRequest(c, "localhost", 51234)
	var stderr agenttest.Output
	in := startPing(t, sess, &stderr)
	in.Write([]byte(checkinRequest(51234)))
	if code := exitCode(t, sess.Wait()); code != 0 {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}

func TestOneSessionPerConnection(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := ts.dial(t, ts.keys[uuidA])
	first := newSession(t, c)
	if second, err := c.NewSession(); err == nil {
		second.Close()
		t.Fatal("second session opened")
	} else if !strings.Contains(err.Error(), "one session per connection") {
		t.Errorf("got %v", err)
	}
	// A second exec on the same session is refused too.
	forwardRequest(c, "localhost", 51234)
	var stderr agenttest.Output
	in := startPing(t, first, &stderr)
	if ok, err := first.SendRequest("exec", true, gossh.Marshal(&execRequest{Command: "sh"})); ok || err != nil {
		t.Errorf("second exec: %v %v, want refused", ok, err)
	}
	in.Write([]byte(checkinRequest(51234)))
	if code := exitCode(t, first.Wait()); code != 0 {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}
