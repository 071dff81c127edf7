package sshserver

// Attacks on admission, tried as a hostile network would: several
// 127.0.0.x source addresses stand for different hosts. Flooders and
// probers are small Go clients bounded in count; the legitimate agent is
// the real OpenSSH client where it matters.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/internal/testlog"
	gossh "golang.org/x/crypto/ssh"

	"github.com/turku-backup/turku-storage/internal/testclock"
)

// newFakeClock is the injected clock for penalty timing.
func newFakeClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// logCapture is a logger that keeps every line as well as sending it to
// t.Log.
type logCapture struct {
	agenttest.Output
}

func captureLog(t *testing.T) (*slog.Logger, *logCapture) {
	lc := &logCapture{}
	h := slog.NewTextHandler(io.MultiWriter(lc, testlog.Writer(t)), &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), lc
}

// count returns how many log lines contain all of parts.
func (lc *logCapture) count(parts ...string) int {
	n := 0
	for _, line := range strings.Split(lc.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// dialFrom opens a TCP connection from source address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bannerWait bounds how long a test waits for a banner or a close; only a
// hung server reaches it.
const bannerWait = 20 * time.Second

// gotBanner reports whether the server sent its version line on c (true)
// or closed c without a byte (false).
func gotBanner(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(bannerWait))
	line, err := bufio.NewReader(c).ReadString('\n')
	switch {
	case strings.HasPrefix(line, "SSH-2.0-"):
		return true
	case line == "" && (errors.Is(err, io.EOF) || isReset(err)):
		return false
	}
	t.Fatalf("neither banner nor close: %q %v", line, err)
	return false
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// flood opens n idle connections from src, one after the other, and
// returns those that got a banner; the others were refused.
func flood(t *testing.T, src, addr string, n int) []net.Conn {
	t.Helper()
	var held []net.Conn
	for range n {
		c := dialFrom(t, src, addr)
		if gotBanner(t, c) {
			held = append(held, c)
		} else {
			c.Close()
		}
	}
	return held
}

// sshFrom runs an SSH handshake from src with the given keys; banner
// reports whether the server got as far as its version line.
func (ts *testServer) sshFrom(t *testing.T, src string, signers ...gossh.Signer) (c *gossh.Client, banner bool, err error) {
	t.Helper()
	nc := &agenttest.CountingConn{Conn: dialFrom(t, src, ts.addr)}
	cc, chans, reqs, err := gossh.NewClientConn(nc, ts.addr, ts.clientConfig(testUser, gossh.PublicKeys(signers...)))
	if err != nil {
		nc.Close()
		return nil, nc.BytesRead() > 0, err
	}
	c = gossh.NewClient(cc, chans, reqs)
	t.Cleanup(func() { c.Close() })
	return c, true, nil
}

// releases returns a channel that receives each source admission took a
// slot back from, for the server's Options.
func releases(o *Options) <-chan netip.Prefix {
	ch := make(chan netip.Prefix, 1024)
	o.released = func(src netip.Prefix) { ch <- src }
	return ch
}

// startPenaltyServer starts a server (tweaked by tweak, if not nil) on a
// fake clock, with its log captured and each connection admission dealt
// with reported on rel.
func startPenaltyServer(t *testing.T, tweak func(*Options)) (ts *testServer, clock *testclock.Clock, logs *logCapture, rel <-chan netip.Prefix) {
	t.Helper()
	clock = newFakeClock()
	logger, logs := captureLog(t)
	ts = startServer(t, func(o *Options) {
		o.Now = clock.Now
		o.Logger = logger
		rel = releases(o)
		if tweak != nil {
			tweak(o)
		}
	})
	return ts, clock, logs, rel
}

// waitRelease waits until admission has dealt with n connections from src.
func waitRelease(t *testing.T, ch <-chan netip.Prefix, src string, n int) {
	t.Helper()
	want := netip.MustParsePrefix(src + "/32")
	timeout := time.After(bannerWait)
	for n > 0 {
		select {
		case got := <-ch:
			if got == want {
				n--
			}
		case <-timeout:
			t.Fatalf("admission never released %d more connections from %s", n, src)
		}
	}
}

// TestFloodDoesNotLockOutAgent: one address holds 300 idle connections
// (no banner, nothing sent); a real agent from another address still backs
// up on its first try, and the flooder holds no more than its per-source
// share.
func TestFloodDoesNotLockOutAgent(t *testing.T) {
	requireTools(t)
	ts := startServer(t, func(o *Options) {
		// The flood must last the whole test, so the handshake deadline
		// (tested below) does not clear it.
		o.HandshakeTimeout = time.Hour
		o.LoginGraceTime = time.Hour
	})
	key := ts.setAgents(t, map[string]string{uuidA: "web1"})[uuidA]
	pulled := t.TempDir()
	ts.puller.pull = rsyncPull(t, pulled)

	held := flood(t, "127.0.0.2", ts.addr, 300)
	if len(held) > DefaultPerSourceMaxStartups {
		t.Errorf("flooder holds %d connections, want at most %d", len(held), DefaultPerSourceMaxStartups)
	}

	etc := t.TempDir()
	want := writeTree(t, etc, "web1")
	rsyncd := agenttest.StartRsyncd(t, "127.0.0.2", []agenttest.Module{agentModule("etc", etc, false)})
	ping := ts.agentPing(key, rsyncd.Host, rsyncd.Port, checkinJSON(rsyncd.Port, "etc"))
	ping.ExtraArgs = []string{"-b", "127.0.0.3"}
	res := ping.Start(t).Wait(t, e2eWait)
	if res.ExitCode != 0 {
		t.Fatalf("agent from another address: ssh exit %d, stderr:\n%s", res.ExitCode, res.Stderr)
	}
	checkTree(t, filepath.Join(pulled, uuidA, "etc"), want)
	// The flood is still held: the agent got in beside it, not after it.
	for _, c := range held {
		c.SetReadDeadline(time.Now())
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			t.Fatal("a flood connection was closed before the agent was done")
		}
	}
}

// TestHandshakeTime: a peer that sends nothing, or only its version line,
// is gone after HandshakeTimeout, long before LoginGraceTime; garbage after
// the version line still closes the connection at once.
func TestHandshakeTime(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		o.HandshakeTimeout = 200 * time.Millisecond
		o.LoginGraceTime = time.Hour
	})
	tests := []struct {
		name string
		send string
	}{
		{name: "silent", send: ""},
		{name: "version line only", send: "SSH-2.0-OpenSSH_9.6\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.2", ts.addr)
			io.WriteString(c, tt.send)
			c.SetReadDeadline(time.Now().Add(bannerWait))
			got, err := io.ReadAll(c) // returns once the server gives up on us
			if err != nil {
				t.Fatalf("got %v, want the server to close the connection", err)
			}
			if !strings.HasPrefix(string(got), "SSH-2.0-TurkuStorage") {
				t.Errorf("got %q before the close", got)
			}
		})
	}

	slow := startServer(t, func(o *Options) {
		o.HandshakeTimeout = time.Hour
		o.LoginGraceTime = time.Hour
	})
	t.Run("garbage after the version line", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.2", slow.addr)
		io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\xff\xff\xff\xffnot a packet at all, not at all")
		c.SetReadDeadline(time.Now().Add(bannerWait))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("got %v, want the connection closed at once", err)
		}
	})
}

// TestHandshakeTimeStopsAtKex: the handshake deadline ends with the first
// key exchange; an agent whose checkin outlasts it is not cut off.
func TestHandshakeTimeStopsAtKex(t *testing.T) {
	// A handshake takes a few milliseconds, but under the race detector
	// on a loaded machine 100 ms was seen to pass before it ended.
	ts := startServer(t, func(o *Options) { o.HandshakeTimeout = time.Second })
	ts.puller.pull = func(ctx context.Context, req PullRequest) error {
		// Well past the handshake deadline: the backup itself.
		select {
		case <-time.After(2 * time.Second):
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	wantCheckin(t, ts.dial(t, ts.keys[uuidA]), 51234, "checkin")
}

// TestPenalties: refused keys earn the source a penalty; once it passes the
// minimum the source is refused before the banner until it has served it.
// Other addresses, and the operator's trusted network, are not affected.
// One log line per penalised source.
func TestPenalties(t *testing.T) {
	ts, clock, logs, rel := startPenaltyServer(t, func(o *Options) {
		o.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.6/32")}
	})
	stranger := agenttest.NewSigner(t)

	// 5 s per failure (DefaultPenalties.AuthFail), enforced from 15 s on.
	for i := range 3 {
		_, banner, err := ts.sshFrom(t, "127.0.0.4", stranger)
		if err == nil || !banner {
			t.Fatalf("attempt %d: banner %v, err %v; want refused after the banner", i+1, banner, err)
		}
		waitRelease(t, rel, "127.0.0.4", 1)
	}
	for i := range 5 {
		if gotBanner(t, dialFrom(t, "127.0.0.4", ts.addr)) {
			t.Fatalf("connection %d after the penalty got a banner, want refused", i+1)
		}
	}
	if n := logs.count("source penalised", "net=127.0.0.4/32"); n != 1 {
		t.Errorf("%d penalty lines for 127.0.0.4, want 1:\n%s", n, logs.String())
	}
	// What earned it is a plain key=value field, not a quoted phrase.
	if n := logs.count("source penalised", "net=127.0.0.4/32", " authentication_failed=3"); n != 1 {
		t.Errorf("penalty line lacks authentication_failed=3:\n%s", logs.String())
	}
	// The address is not logged as a backup source (journal field SOURCE=).
	if n := logs.count("source penalised", " source="); n != 0 {
		t.Errorf("penalty line names the address as source=:\n%s", logs.String())
	}

	// Another address with the right key is not affected.
	if _, _, err := ts.sshFrom(t, "127.0.0.5", ts.keys[uuidA]); err != nil {
		t.Errorf("agent from another address: %v", err)
	}
	// Neither is the trusted network, however often it fails.
	for i := range 6 {
		_, banner, err := ts.sshFrom(t, "127.0.0.6", stranger)
		if err == nil || !banner {
			t.Fatalf("trusted attempt %d: banner %v, err %v; want refused after the banner", i+1, banner, err)
		}
		waitRelease(t, rel, "127.0.0.6", 1)
	}
	if n := logs.count("source penalised", "net=127.0.0.6/32"); n != 0 {
		t.Errorf("trusted network penalised")
	}

	// Served: the source is let in again and may log in.
	clock.Add(DefaultPenalties.Min + time.Second)
	if _, _, err := ts.sshFrom(t, "127.0.0.4", ts.keys[uuidV]); err != nil {
		t.Errorf("after the penalty: %v", err)
	}
}

// TestPenaltyGrowsAndIsCapped: a repeat offender's penalty doubles each
// time, up to Penalties.Max; refusals while penalised do not extend it.
func TestPenaltyGrowsAndIsCapped(t *testing.T) {
	clock := newFakeClock()
	pen := Penalties{AuthFail: 5 * time.Second, NoAuth: time.Second, GraceExceeded: time.Second,
		Min: 15 * time.Second, Max: 50 * time.Second}
	a := testAdmission(clock, nil, func(o *Options) { o.PerSourceMaxStartups, o.Penalties = 10, pen })
	src := netip.MustParsePrefix("192.0.2.7/32")
	for _, want := range []time.Duration{15 * time.Second, 30 * time.Second, 50 * time.Second, 50 * time.Second} {
		refuseKeys(t, a, src, 3)
		for range 10 {
			if ok, why := a.admit(src); ok || why != refusedPenalty {
				t.Fatalf("got %v %q, want refused for the penalty", ok, why)
			}
		}
		clock.Add(want - time.Second)
		if ok, _ := a.admit(src); ok {
			t.Fatalf("admitted %s into a %s penalty", want-time.Second, want)
		}
		clock.Add(time.Second)
		if ok, why := a.admit(src); !ok {
			t.Fatalf("refused (%s) after a %s penalty", why, want)
		}
		a.release(src, outcomeNone)
	}
	// An address that then authenticates starts afresh.
	a.admit(src)
	a.release(src, outcomeAuthenticated)
	refuseKeys(t, a, src, 3)
	clock.Add(15 * time.Second)
	if ok, why := a.admit(src); !ok {
		t.Fatalf("refused (%s) after 15 s, want the first penalty again", why)
	}
}

// TestKeyProbe: a scanner asking which keys are registered, as fast as it
// can, gets MaxAuthTries answers per connection and a few connections
// before its address is refused.
func TestKeyProbe(t *testing.T) {
	ts, _, logs, rel := startPenaltyServer(t, nil)
	var keys []gossh.Signer
	for range 20 {
		keys = append(keys, agenttest.NewSigner(t))
	}
	const connections = 40
	bannered := 0
	for range connections {
		_, banner, err := ts.sshFrom(t, "127.0.0.7", keys...)
		if err == nil {
			t.Fatal("prober logged in")
		}
		if banner {
			bannered++
			waitRelease(t, rel, "127.0.0.7", 1)
		}
	}
	answered := logs.count("public key not authorized", "remote=127.0.0.7:")
	t.Logf("%d of %d connections got a banner; %d key queries answered", bannered, connections, answered)
	if bannered > 3 {
		t.Errorf("%d connections got a banner, want 3 (15 s of 5 s penalties)", bannered)
	}
	if answered > bannered*DefaultMaxAuthTries {
		t.Errorf("%d key queries answered on %d connections, want at most %d per connection",
			answered, bannered, DefaultMaxAuthTries)
	}
	if n := logs.count("level=INFO", "public key not authorized"); n > bannered {
		t.Errorf("%d INFO lines about unauthorized keys, want at most one per connection", n)
	}
}

// TestStartupLimits: per-source cap, random early drop for strangers, and
// room kept for an address that authenticated before.
func TestStartupLimits(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		// Full 8 keeps 2 for known sources; strangers are dropped from 4
		// on with probability 100%.
		o.MaxStartups = MaxStartups{Start: 4, Rate: 100, Full: 8}
		o.PerSourceMaxStartups = 2
		o.HandshakeTimeout = time.Hour
		o.LoginGraceTime = time.Hour
	})
	// An agent backs up from 127.0.0.10 before the attack.
	c, _, err := ts.sshFrom(t, "127.0.0.10", ts.keys[uuidA])
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	if got := len(flood(t, "127.0.0.11", ts.addr, 3)); got != 2 {
		t.Errorf("127.0.0.11 holds %d, want its per-source 2", got)
	}
	if got := len(flood(t, "127.0.0.12", ts.addr, 2)); got != 2 {
		t.Errorf("127.0.0.12 holds %d, want 2", got)
	}
	if got := len(flood(t, "127.0.0.13", ts.addr, 1)); got != 0 {
		t.Errorf("stranger 127.0.0.13 got %d connections past start with rate 100, want 0", got)
	}
	// The known address is not dropped at random and gets in.
	for i := range 2 {
		if _, _, err := ts.sshFrom(t, "127.0.0.10", ts.keys[uuidA]); err != nil {
			t.Fatalf("known agent, connection %d: %v", i+1, err)
		}
	}
}

func TestSourceOf(t *testing.T) {
	tests := []struct {
		addr string
		want string
	}{
		{"192.0.2.1:22", "192.0.2.1/32"},
		{"[::ffff:192.0.2.1]:22", "192.0.2.1/32"},
		{"[2001:db8:1:2:3:4:5:6]:22", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:22", "2001:db8:1:2::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := sourceOf(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(tt.addr)))
			if got.String() != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestSourceTableBounded: a distributed attack from more addresses than
// the table holds costs no more memory, and served penalties are
// forgotten.
func TestSourceTableBounded(t *testing.T) {
	clock := newFakeClock()
	a := testAdmission(clock, nil, func(o *Options) { o.PerSourceMaxStartups = 10 })
	for i := range maxSources + 5000 {
		src := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		if ok, why := a.admit(src); !ok {
			t.Fatalf("source %d refused (%s)", i, why)
		}
		a.release(src, outcomeNoAuth)
	}
	if n := len(a.strangers); n > maxSources {
		t.Errorf("%d sources remembered, want at most %d", n, maxSources)
	}
	if a.total != 0 {
		t.Errorf("%d startups counted after every connection ended", a.total)
	}
	clock.Add(strikesFor + time.Second)
	a.admit(netip.MustParsePrefix("192.0.2.1/32"))
	if n := len(a.strangers); n != 1 {
		t.Errorf("%d sources remembered a day later, want 1", n)
	}
}
