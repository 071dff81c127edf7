package sshserver

// One machine's key must not starve the others: its connections and
// sessions are capped before it can take a global session slot, a session
// that never states its action is ended soon, and the refusals are
// summarised in the log rather than logged one by one.

import (
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

// hostile is a machine's key used against the server: it opens
// connections and, on each, a session that never states its action, and
// holds whatever it got.
type hostile struct {
	mu       sync.Mutex
	clients  []*gossh.Client
	sessions int
}

// attack makes n attempts from workers goroutines at once, opening a
// session on each connection if sessions.
func (h *hostile) attack(ts *testServer, signer gossh.Signer, n, workers int, sessions bool) {
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				c, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(testUser, gossh.PublicKeys(signer)))
				if err != nil {
					continue
				}
				h.mu.Lock()
				h.clients = append(h.clients, c)
				h.mu.Unlock()
				if !sessions {
					continue
				}
				if _, err := c.NewSession(); err == nil {
					h.mu.Lock()
					h.sessions++
					h.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

// open counts the connections still open, asking each for a reply.
func (h *hostile) open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.clients {
		if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err == nil {
			n++
		}
	}
	return n
}

func (h *hostile) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.clients {
		c.Close()
	}
	h.clients = nil
}

// maxAttackHeap is the stated bound on what the server's heap may grow by
// while one machine's key hammers it (docs/operations.md, "Facing the
// internet"): its few admitted connections, not one per attempt.
const maxAttackHeap = 8 << 20

// TestE2EMachineCannotStarveOthers: machine A's key opens 50 connections,
// each with a session that never states its action, then 400 more that
// only authenticate, 6 at a time; machine V's real backup (OpenSSH client,
// rsync daemon) still succeeds, A holds no more than its per-machine
// share, and the heap stays flat.
func TestE2EMachineCannotStarveOthers(t *testing.T) {
	requireTools(t)
	logger, logs := captureLog(t)
	ts := startServer(t, func(o *Options) {
		o.Logger = logger
		// Few global slots, so that the old way one key takes them all
		// quickly.
		o.MaxSessions = 20
		o.LoginGraceTime = time.Hour
	})
	keys := ts.setAgents(t, map[string]string{uuidA: "hostile", uuidV: "victim"})
	pulled := t.TempDir()
	ts.puller.pull = rsyncPull(t, pulled)

	before := heapInUse()
	h := &hostile{}
	t.Cleanup(h.close)
	h.attack(ts, keys[uuidA].Signer, 50, 6, true)
	h.attack(ts, keys[uuidA].Signer, 400, 6, false)
	grown := int64(heapInUse()) - int64(before)
	held := h.open()
	t.Logf("hostile key: %d connections and %d sessions held of 450 attempts; heap grew %.1f MiB",
		held, h.sessions, float64(grown)/(1<<20))
	if held > 4 {
		t.Errorf("hostile key holds %d connections, want at most %d", held, 4)
	}
	if h.sessions > 2 {
		t.Errorf("hostile key opened %d sessions, want at most %d", h.sessions, 2)
	}
	if grown > maxAttackHeap {
		t.Errorf("heap grew %.1f MiB under the attack, want at most %d MiB", float64(grown)/(1<<20), maxAttackHeap>>20)
	}

	etc := t.TempDir()
	want := writeTree(t, etc, "victim")
	rsyncd := agenttest.StartRsyncd(t, "127.0.0.2", []agenttest.Module{agentModule("etc", etc, false)})
	// From another address: the hostile key's (127.0.0.1) is penalised
	// for the connections refused at its machine's limit.
	ping := ts.agentPing(keys[uuidV], rsyncd.Host, rsyncd.Port, checkinJSON(rsyncd.Port, "etc"))
	ping.ExtraArgs = []string{"-b", "127.0.0.3"}
	res := ping.Start(t).Wait(t, e2eWait)
	if res.ExitCode != 0 {
		t.Fatalf("other machine's backup: ssh exit %d, stderr:\n%s", res.ExitCode, res.Stderr)
	}
	checkTree(t, filepath.Join(pulled, uuidV, "etc"), want)

	// The refusals are summarised: one line as they start, one once the
	// machine's last connection has gone, naming how many.
	h.close()
	logs.WaitFor(t, "refused a machine over its limits", 1, e2eWait)
	if n := logs.count("machine="+uuidA, "refus"); n > 2 {
		t.Errorf("%d log lines about machine A's refusals, want 2 (a first and a summary):\n%s", n, logs.String())
	}
}

// TestSessionRequestTimeout: a session that never sends its command (or
// its request) is ended after SessionRequestTimeout, long before
// LoginGraceTime, and its slot is free for another machine.
func TestSessionRequestTimeout(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		o.MaxSessions = 1
		o.LoginGraceTime = time.Hour
	})
	tests := []struct {
		name string
		exec bool // the command is sent, the request never
	}{
		{name: "no command"},
		{name: "command, no request", exec: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ts.dial(t, ts.keys[uuidA])
			sess := newSession(t, a)
			if tt.exec {
				startPing(t, sess, nil)
			}
			ended := make(chan error, 1)
			go func() { ended <- a.Wait() }()
			select {
			case <-ended:
			case <-time.After(bannerWait):
				t.Fatal("a session that stated no action still holds its connection")
			}
			wantCheckin(t, ts.dial(t, ts.keys[uuidV]), 51234, "other machine after the stalled session")
		})
	}
}

// TestMachineRefusalsSummarised: refusals of one machine make one line as
// they start, a summary with the count once a minute while they go on,
// and a last one when the machine's connections are gone; the refused
// connections log no "agent authenticated".
func TestMachineRefusalsSummarised(t *testing.T) {
	clock := newFakeClock()
	logger, logs := captureLog(t)
	ts := startServer(t, func(o *Options) {
		o.Now = clock.Now
		o.Logger = logger
		o.MaxConnectionsPerMachine = 1
		o.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} // no penalties: the log is the point
	})
	held := ts.dial(t, ts.keys[uuidA])
	refuse := func(n int) {
		t.Helper()
		for range n {
			var banner string
			cfg := ts.clientConfig(testUser, gossh.PublicKeys(ts.keys[uuidA]))
			cfg.BannerCallback = func(msg string) error {
				banner = msg
				return nil
			}
			c, err := gossh.Dial("tcp", ts.addr, cfg)
			if err == nil {
				c.Close()
				t.Fatal("a connection beyond MaxConnectionsPerMachine authenticated")
			}
			if want := "Too many connections for this machine on this storage unit"; !strings.HasPrefix(banner, want) {
				t.Errorf("refused connection: banner %q, want %q", banner, want)
			}
		}
	}
	refuse(5)
	clock.Add(summaryEvery)
	refuse(3)
	held.Close()
	logs.WaitFor(t, "refused a machine over its limits", 2, e2eWait)
	machine := "machine=" + uuidA
	for _, tt := range []struct {
		parts []string
		want  int
	}{
		{[]string{"refusing a machine over its limits", machine, "refused=connections"}, 1},
		{[]string{"refused a machine over its limits", machine, "period=1m0s", " connections=5 "}, 1},
		{[]string{"refused a machine over its limits", machine, "period=0s", " connections=2 "}, 1},
		{[]string{"agent authenticated", machine}, 1},
	} {
		if n := logs.count(tt.parts...); n != tt.want {
			t.Errorf("%d lines with %q, want %d", n, tt.parts, tt.want)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs.String())
	}
}

// TestRepeatedRefusalsLogOnce: a client asking again and again for what
// is refused (further sessions on its connection, a pty on its session)
// makes one line at INFO or WARN, not one each.
func TestRepeatedRefusalsLogOnce(t *testing.T) {
	logger, logs := captureLog(t)
	ts := startServer(t, func(o *Options) { o.Logger = logger })
	c := ts.dial(t, ts.keys[uuidA])
	sess := newSession(t, c)
	for range 20 {
		if _, _, err := c.OpenChannel("session", nil); err == nil {
			t.Fatal("a second session on one connection was accepted")
		}
		if ok, err := sess.SendRequest("pty-req", true, nil); ok || err != nil {
			t.Fatalf("pty-req: got %v, %v; want refused", ok, err)
		}
	}
	for _, tt := range []struct {
		parts []string
		want  int
	}{
		{[]string{"level=WARN", "machine=" + uuidA}, 1},
		{[]string{"level=INFO", "session request refused", "type=pty-req"}, 1},
	} {
		if n := logs.count(tt.parts...); n != tt.want {
			t.Errorf("%d lines with %q, want %d:\n%s", n, tt.parts, tt.want, logs.String())
		}
	}
}
