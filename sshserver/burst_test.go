package sshserver

// A burst of legitimate agents at once: first-time agents must not be
// refused at admission, and checkins waiting for a backup slot must not
// be refused for MaxSessions.

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

// fleet is n machines with keys of their own, by UUID.
func fleet(t *testing.T, n int) (map[string]apiclient.MachineInfo, []gossh.Signer, []string) {
	t.Helper()
	machines := map[string]apiclient.MachineInfo{}
	var signers []gossh.Signer
	var uuids []string
	for i := range n {
		s := agenttest.NewSigner(t)
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		machines[id] = machineInfo(fmt.Sprintf("m%d", i), s)
		signers = append(signers, s)
		uuids = append(uuids, id)
	}
	return machines, signers, uuids
}

// loginFrom runs an SSH handshake and authentication from src, without a
// testing.T: it is called from goroutines.
func (ts *testServer) loginFrom(src string, signer gossh.Signer) (*gossh.Client, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", ts.addr)
	if err != nil {
		return nil, err
	}
	// Bounds a hung server only.
	nc.SetDeadline(time.Now().Add(time.Minute))
	cc, chans, reqs, err := gossh.NewClientConn(nc, ts.addr, ts.clientConfig(testUser, gossh.PublicKeys(signer)))
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return gossh.NewClient(cc, chans, reqs), nil
}

// TestBurstOfFirstTimeAgents: 90 agents the server has never seen (a
// restart without the known sources, a new fleet) connect at the same
// moment from 90 addresses; every one authenticates on its first try.
// Before strangers waited for a slot, random early drop refused some of
// them at once (bench (h): 4-14 of 90).
func TestBurstOfFirstTimeAgents(t *testing.T) {
	const n = 90
	machines, signers, _ := fleet(t, n)
	obs := &recordingObserver{}
	ts := startServer(t, func(o *Options) {
		o.Machines = machines
		o.Observer = obs
	})
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			c, err := ts.loginFrom(fmt.Sprintf("127.0.1.%d", i+1), signers[i])
			if err == nil {
				c.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	refused := 0
	for i, err := range errs {
		if err != nil {
			refused++
			t.Logf("agent %d: %v", i, err)
		}
	}
	if refused > 0 {
		obs.mu.Lock()
		t.Errorf("%d of %d first-time agents refused, want 0 (drops: %v)", refused, n, obs.dropped)
		obs.mu.Unlock()
	}
}

// TestStrangerFloodStillDropped: strangers that never authenticate, from
// 20 addresses at once, still meet every rule: the per-source limit, the
// strangers' share of MaxStartups (those waiting beyond it are dropped
// once their wait is over) — and an agent known from before gets in
// beside them.
func TestStrangerFloodStillDropped(t *testing.T) {
	obs := &recordingObserver{}
	ts := startServer(t, func(o *Options) {
		o.Observer = obs
		o.HandshakeTimeout = time.Hour
		o.LoginGraceTime = time.Hour
	})
	ts.adm.mu.Lock()
	ts.adm.wait = 200 * time.Millisecond // the flood's waits end within the test
	ts.adm.mu.Unlock()
	known, err := ts.loginFrom("127.0.2.1", ts.keys[uuidA])
	if err != nil {
		t.Fatal(err)
	}
	known.Close()

	const sources, each = 20, DefaultPerSourceMaxStartups + 2
	var held atomic.Int32
	var perSourceHeld [sources]atomic.Int32
	var conns sync.Map
	var wg sync.WaitGroup
	for i := range sources * each {
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.3.%d", i%sources+1))}}
			c, err := d.Dial("tcp", ts.addr)
			if err != nil {
				return
			}
			conns.Store(c, true)
			c.SetReadDeadline(time.Now().Add(bannerWait))
			if n, _ := c.Read(make([]byte, 1)); n > 0 {
				held.Add(1)
				perSourceHeld[i%sources].Add(1)
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
	})
	if got, most := int(held.Load()), ts.adm.strangerFull; got > most || got < ts.adm.start {
		t.Errorf("flood holds %d connections, want from Start %d to the strangers' share %d", got, ts.adm.start, most)
	}
	for i := range perSourceHeld {
		if n := perSourceHeld[i].Load(); n > DefaultPerSourceMaxStartups {
			t.Errorf("source %d holds %d connections, want at most %d", i+1, n, DefaultPerSourceMaxStartups)
		}
	}
	obs.mu.Lock()
	perSource, dropped := obs.dropped[DropPerSource], obs.dropped[DropEarlyDrop]+obs.dropped[DropMaxStartups]
	obs.mu.Unlock()
	if dropped == 0 {
		t.Error("no connection dropped for MaxStartups")
	}
	if got := perSource + dropped + int(held.Load()); got != sources*each {
		t.Errorf("%d held, %d refused at the per-source limit, %d dropped: %d of %d connections", held.Load(), perSource, dropped, got, sources*each)
	}
	ts.adm.mu.Lock()
	waiting := ts.adm.waiting.Len()
	ts.adm.mu.Unlock()
	if waiting != 0 {
		t.Errorf("%d still waiting after the wait", waiting)
	}

	c, err := ts.loginFrom("127.0.2.1", ts.keys[uuidA])
	if err != nil {
		t.Fatalf("known agent during the flood: %v", err)
	}
	c.Close()
}

// TestWaitingBackupsNotCounted: 110 machines check in at once (more than
// DefaultMaxSessions) and wait for one backup slot, as max_concurrent_backups
// 1 makes them; every one is served in turn. The puller stands for
// backup.Slots.
func TestWaitingBackupsNotCounted(t *testing.T) {
	const n = DefaultMaxSessions + 10
	machines, signers, _ := fleet(t, n)
	slot := make(chan struct{}, 1)
	// allIn is closed once every session but the one holding the slot
	// waits for it, or was refused: the slot is held until then, so that
	// all of them are open at once.
	var settled atomic.Int32
	allIn := make(chan struct{})
	settle := func() {
		if settled.Add(1) == n-1 {
			close(allIn)
		}
	}
	var first atomic.Bool
	ts := startServer(t, func(o *Options) {
		o.Machines = machines
	})
	ts.puller.pull = func(ctx context.Context, req PullRequest) error {
		if !first.CompareAndSwap(false, true) {
			settle()
		}
		select {
		case slot <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		defer func() { <-slot }()
		select {
		case <-allIn:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	clients := make([]*gossh.Client, n)
	for i := range n {
		clients[i] = ts.dial(t, signers[i])
		if ok, err := forwardRequest(clients[i], "localhost", 51234); !ok || err != nil {
			t.Fatalf("machine %d: forward refused: %v", i, err)
		}
	}
	codes := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			codes[i], errs[i] = checkin(clients[i], checkinRequest(51234))
			if codes[i] != 0 {
				settle()
			}
		})
	}
	wg.Wait()
	failed := 0
	for i := range n {
		if codes[i] != 0 {
			failed++
			t.Logf("machine %d: exit %d, %v", i, codes[i], errs[i])
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d checkins waiting for a backup slot failed, want 0", failed, n)
	}
}

// checkin runs one session like runSession, without a testing.T.
func checkin(c *gossh.Client, request string) (int, error) {
	sess, err := c.NewSession()
	if err != nil {
		return -1, err
	}
	defer sess.Close()
	in, err := sess.StdinPipe()
	if err != nil {
		return -1, err
	}
	if err := sess.Start("turku-ping-remote"); err != nil {
		return -1, err
	}
	if _, err := in.Write([]byte(request)); err != nil {
		return -1, err
	}
	err = sess.Wait()
	if ee, ok := err.(*gossh.ExitError); ok {
		return ee.ExitStatus(), err
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
