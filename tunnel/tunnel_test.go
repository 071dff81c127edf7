package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/internal/testlog"
	gossh "golang.org/x/crypto/ssh"
)

// agent is the client half of an in-process SSH connection over loopback;
// it plays the Turku agent: it answers "forwarded-tcpip" channels with
// handle, as OpenSSH would connect them to its rsync daemon.
type agent struct {
	server *gossh.ServerConn // the storage side, an Opener
	client *gossh.Client

	mu       sync.Mutex // guards payloads
	payloads []forwardedTCPPayload
}

// newAgent connects an x/crypto client to an x/crypto server and serves
// forwarded channels with handle (nil: reject them all).
func newAgent(t *testing.T, handle func(ch gossh.Channel)) *agent {
	t.Helper()
	signer := agenttest.NewSigner(t)
	cfg := &gossh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type result struct {
		conn *gossh.ServerConn
		err  error
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	res := make(chan result, 1)
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		sc, chans, reqs, err := gossh.NewServerConn(c, cfg)
		if err != nil {
			c.Close()
			res <- result{err: err}
			return
		}
		res <- result{conn: sc}
		wg.Go(func() { gossh.DiscardRequests(reqs) })
		wg.Go(func() {
			for nc := range chans {
				nc.Reject(gossh.Prohibited, "no")
			}
		})
	})

	client, err := gossh.Dial("tcp", ln.Addr().String(), &gossh.ClientConfig{
		User:            "agent",
		HostKeyCallback: gossh.FixedHostKey(signer.PublicKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	a := &agent{server: r.conn, client: client}
	t.Cleanup(func() {
		client.Close()
		r.conn.Close()
	})

	incoming := client.HandleChannelOpen(ChannelType)
	wg.Go(func() {
		for nc := range incoming {
			var p forwardedTCPPayload
			if err := gossh.Unmarshal(nc.ExtraData(), &p); err != nil {
				nc.Reject(gossh.ConnectionFailed, err.Error())
				continue
			}
			a.mu.Lock()
			a.payloads = append(a.payloads, p)
			a.mu.Unlock()
			if handle == nil {
				nc.Reject(gossh.Prohibited, "forward not requested")
				continue
			}
			ch, reqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Go(func() { gossh.DiscardRequests(reqs) })
			wg.Go(func() {
				defer ch.Close()
				handle(ch)
			})
		}
	})
	return a
}

func (a *agent) seen() []forwardedTCPPayload {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]forwardedTCPPayload(nil), a.payloads...)
}

// replier reads everything up to EOF, which only arrives if the storage side
// half-closed, then answers with tag and what it read, and half-closes in
// turn.
func replier(tag string) func(ch gossh.Channel) {
	return func(ch gossh.Channel) {
		got, err := io.ReadAll(ch)
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(ch, "%s:%s", tag, got); err != nil {
			return
		}
		ch.CloseWrite()
		// Wait for the storage side to finish before closing.
		io.Copy(io.Discard, ch)
	}
}

// roundTrip connects to addr, sends data, half-closes and returns all it
// reads back until EOF.
func roundTrip(t *testing.T, addr net.Addr, data []byte) (reply []byte, local *net.TCPAddr) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	reply, err = io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return reply, c.LocalAddr().(*net.TCPAddr)
}

func TestCheckinCarriesBothWays(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		name     string
		bindAddr string
		data     []byte
	}{
		{name: "empty", bindAddr: "localhost", data: nil},
		{name: "small", bindAddr: "localhost", data: []byte("@RSYNCD: 32.0 sha512 sha256\n")},
		{name: "1 MiB", bindAddr: "localhost", data: big},
		{name: "address echoed as given", bindAddr: "127.0.0.1", data: []byte("x")},
		{name: "empty address echoed", bindAddr: "", data: []byte("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAgent(t, replier("agent"))
			var received atomic.Int64
			ep, err := Checkin(t.Context(), a.server, tt.bindAddr, 51234, testlog.New(t), CountReceived(func(n int64) { received.Add(n) }), ownProcess())
			if err != nil {
				t.Fatal(err)
			}
			defer ep.Close()
			if ip := ep.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
				t.Errorf("endpoint listens on %v, want loopback", ip)
			}
			if ep.Port() == 51234 {
				t.Errorf("checkin endpoint bound the agent's own port")
			}

			got, local := roundTrip(t, ep.Addr(), tt.data)
			want := append([]byte("agent:"), tt.data...)
			if !bytes.Equal(got, want) {
				t.Errorf("got %d bytes back, want %d (prefix %q)", len(got), len(want), got[:min(len(got), 20)])
			}
			wantPayload := []forwardedTCPPayload{{
				Addr: tt.bindAddr, Port: 51234,
				OriginAddr: local.IP.String(), OriginPort: uint32(local.Port),
			}}
			if diff := cmp.Diff(wantPayload, a.seen()); diff != "" {
				t.Errorf("forwarded-tcpip payloads (-want +got):\n%s", diff)
			}
			ep.Close() // waits for the copies, so the count is final
			if got := received.Load(); got != int64(len(want)) {
				t.Errorf("counted %d bytes received, want %d", got, len(want))
			}
		})
	}
}

// TestSamePortIsolated: two agents picked the same PORT at the same time;
// each storage-side endpoint must reach only its own agent.
func TestSamePortIsolated(t *testing.T) {
	const port = 60000
	agents := map[string]*agent{"A": newAgent(t, replier("A")), "B": newAgent(t, replier("B"))}
	eps := map[string]*Endpoint{}
	for name, a := range agents {
		ep, err := Checkin(t.Context(), a.server, "localhost", port, testlog.New(t), ownProcess())
		if err != nil {
			t.Fatal(err)
		}
		defer ep.Close()
		eps[name] = ep
	}
	if eps["A"].Addr().String() == eps["B"].Addr().String() {
		t.Fatalf("both endpoints on %v", eps["A"].Addr())
	}
	var wg sync.WaitGroup
	replies := map[string][]byte{}
	var mu sync.Mutex
	for name, ep := range eps {
		for i := range 4 {
			wg.Go(func() {
				c, err := net.Dial("tcp", ep.Addr().String())
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				fmt.Fprintf(c, "req%d", i)
				c.(*net.TCPConn).CloseWrite()
				got, err := io.ReadAll(c)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				replies[fmt.Sprintf("%s%d", name, i)] = got
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for name := range eps {
		for i := range 4 {
			key := fmt.Sprintf("%s%d", name, i)
			if got, want := string(replies[key]), fmt.Sprintf("%s:req%d", name, i); got != want {
				t.Errorf("%s: got %q, want %q", key, got, want)
			}
		}
		for _, p := range agents[name].seen() {
			if p.Port != port || p.Addr != "localhost" {
				t.Errorf("agent %s got payload %+v", name, p)
			}
		}
	}
}

// ownProcess lets this test process's own connections through, as the
// tests that are not about admission make them.
func ownProcess() Option { return func(e *Endpoint) { e.ownProcess = true } }

// freePort returns a port of the agent's range that was free a moment
// ago, as the agent picks one.
func freePort(t *testing.T) uint32 {
	t.Helper()
	for range 100 {
		port := DefaultPorts.Min + uint32(mathrand.IntN(int(DefaultPorts.Max-DefaultPorts.Min+1)))
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("no free port in the agent's range")
	return 0
}

func TestRestoreBindsRequestedPort(t *testing.T) {
	a := newAgent(t, replier("agent"))
	// Another process may grab the port between freePort and Restore; retry.
	for try := 0; ; try++ {
		port := freePort(t)
		ep, err := Restore(t.Context(), a.server, "localhost", port, testlog.New(t), ownProcess())
		if err != nil {
			t.Fatal(err)
		}
		if uint32(ep.Port()) != port {
			ep.Close()
			if try < 5 {
				continue
			}
			t.Fatalf("restore listens on %d, want %d", ep.Port(), port)
		}
		defer ep.Close()
		got, _ := roundTrip(t, ep.Addr(), []byte("restore"))
		if string(got) != "agent:restore" {
			t.Errorf("got %q", got)
		}
		return
	}
}

// TestRestoreRefusesTakenPort: the agent prints restore instructions with
// the port it asked for, so a restore must never move to another port
// where whoever squatted the asked one would meet the operator's rsync.
func TestRestoreRefusesTakenPort(t *testing.T) {
	a := newAgent(t, replier("agent"))
	var taken net.Listener
	var err error
	for try := 0; taken == nil; try++ {
		taken, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(freePort(t)))))
		if err != nil && try == 5 {
			t.Fatal(err)
		}
	}
	defer taken.Close()
	port := uint32(taken.Addr().(*net.TCPAddr).Port)

	ep, err := Restore(t.Context(), a.server, "localhost", port, testlog.New(t), ownProcess())
	if err == nil {
		ep.Close()
		t.Fatalf("restore opened %v although port %d is taken", ep.Addr(), port)
	}
	if !errors.Is(err, ErrRestorePortTaken) {
		t.Errorf("got %v, want ErrRestorePortTaken", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(port)) {
		t.Errorf("error %q does not name port %d", err, port)
	}
}

// TestRestoreRefusesPortsOutsideRange: a root storage unit must not bind
// 127.0.0.1:25 because an agent asked, nor the port of a service of its
// host that is down for a moment (Redis on 6379, turku-api on 8000),
// whose clients would then talk to the agent: only the agent's own range
// (tunnel_port_range) may be listened on.
func TestRestoreRefusesPortsOutsideRange(t *testing.T) {
	a := newAgent(t, replier("agent"))
	tests := []struct {
		name  string
		ports PortRange
		port  uint32
	}{
		{"privileged", DefaultPorts, 25},
		{"highest privileged", DefaultPorts, 1023},
		{"lowest unprivileged", DefaultPorts, 1024},
		{"redis", DefaultPorts, 6379},
		{"turku-api", DefaultPorts, 8000},
		{"just below the agent's range", DefaultPorts, 49151},
		{"beyond 65535", DefaultPorts, 70000},
		{"above a narrowed range", PortRange{Min: 50000, Max: 50100}, 50101},
		{"invalid range", PortRange{Min: 80, Max: 65535}, 51234},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := Restore(t.Context(), a.server, "localhost", tt.port, testlog.New(t), Ports(tt.ports), ownProcess())
			if err == nil {
				ep.Close()
				t.Fatalf("port %d: restore listens on %v", tt.port, ep.Addr())
			}
			if !errors.Is(err, ErrRestorePortOutOfRange) {
				t.Errorf("port %d: got %v, want ErrRestorePortOutOfRange", tt.port, err)
			}
		})
	}
	// Within a narrowed range, a port is taken as asked.
	port := freePort(t)
	ep, err := Restore(t.Context(), a.server, "localhost", port, testlog.New(t), Ports(PortRange{Min: port, Max: port}), ownProcess())
	if err != nil {
		t.Fatalf("port %d in range %d-%d: %v", port, port, port, err)
	}
	ep.Close()
}

func TestStopEndsEverything(t *testing.T) {
	tests := []struct {
		name string
		stop func(ep *Endpoint, cancel context.CancelFunc)
	}{
		{name: "Close", stop: func(ep *Endpoint, _ context.CancelFunc) { ep.Close() }},
		{name: "context", stop: func(ep *Endpoint, cancel context.CancelFunc) { cancel(); ep.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := make(chan struct{})
			// This agent never answers and never half-closes.
			a := newAgent(t, func(ch gossh.Channel) {
				close(started)
				io.Copy(io.Discard, ch)
			})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ep, err := Checkin(ctx, a.server, "localhost", 51234, testlog.New(t), ownProcess())
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", ep.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			<-started
			tt.stop(ep, cancel) // returns only once its goroutines are done

			if _, err := io.ReadAll(c); err != nil && !errors.Is(err, net.ErrClosed) {
				t.Logf("read after stop: %v", err)
			}
			if c2, err := net.Dial("tcp", ep.Addr().String()); err == nil {
				c2.Close()
				t.Errorf("endpoint still accepts after stop")
			}
		})
	}
}

func TestAgentRefusesChannel(t *testing.T) {
	a := newAgent(t, nil)
	_, c := dialCheckin(t, a)
	// The connection is closed without a byte once the agent refuses.
	got, err := io.ReadAll(c)
	if len(got) != 0 || err != nil {
		t.Errorf("got %q, %v from a refused channel; want EOF", got, err)
	}
}

// dialCheckin opens a checkin endpoint to a and connects to it as the
// engine's rsync would; both are closed when the test ends.
func dialCheckin(t *testing.T, a *agent, opts ...Option) (*Endpoint, net.Conn) {
	t.Helper()
	ep, err := Checkin(t.Context(), a.server, "localhost", 51234, testlog.New(t), append(opts, ownProcess())...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	c, err := net.Dial("tcp", ep.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ep, c
}

// TestReceivedCountsWhileOpen: CountReceived is told what came from the
// agent while the connection is still open (live status), not only at its
// end: within a few of the intervals at which the local socket's count is
// read.
func TestReceivedCountsWhileOpen(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 100<<10)
	release := make(chan struct{})
	a := newAgent(t, func(ch gossh.Channel) {
		defer ch.Close()
		ch.Write(chunk)
		<-release
		ch.Write(chunk)
	})
	var received atomic.Int64
	_, c := dialCheckin(t, a, CountReceived(func(n int64) { received.Add(n) }))
	buf := make([]byte, len(chunk))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	waitCount(t, &received, int64(len(chunk)))
	close(release)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	waitCount(t, &received, int64(2*len(chunk)))
}

// waitCount waits for n to reach want, for at most 5 count intervals: the
// count is sampled, so there is no event to wait on.
func waitCount(t *testing.T, n *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * countInterval)
	for n.Load() < want && time.Now().Before(deadline) {
		time.Sleep(countInterval / 20)
	}
	if got := n.Load(); got != want {
		t.Errorf("Received %d while open, want %d", got, want)
	}
}

// TestLocalCloseEndsFlood: the local side (rsync) goes away while the
// agent is still sending. The copy from the channel, which writes the
// agent's packets straight to the local connection, must fail, close the
// channel (the agent's writes end) and let the connection's goroutines
// finish, so that Close returns.
func TestLocalCloseEndsFlood(t *testing.T) {
	agentDone := make(chan error, 1)
	a := newAgent(t, func(ch gossh.Channel) {
		buf := bytes.Repeat([]byte{0x5a}, 1<<20)
		var err error
		for i := 0; i < 256 && err == nil; i++ { // at most 256 MiB
			_, err = ch.Write(buf)
		}
		agentDone <- err
	})
	ep, c := dialCheckin(t, a)
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		t.Fatal(err)
	}
	if first[0] != 0x5a {
		t.Errorf("got %#x, want 0x5a", first[0])
	}
	c.Close()
	if err := <-agentDone; err == nil {
		t.Errorf("the agent wrote 256 MiB to a tunnel whose local side had closed")
	}
	ep.Close()
}
