//go:build bench

package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// Measurement (g): the open internet. While one address (127.0.3.1) holds
// 300 idle TCP connections (redialling each one the server closes, after
// 100 ms) and another (127.0.3.2) offers unknown keys as fast as it can,
// the measured agent (from 127.0.0.1) runs checkin round trips as in (a),
// and then the 50 agents of (d) back up at once, each from its own
// address (127.0.2.N), as they did once before the attack. Each side is attacked on
// its own, one after the other. Then, per side, round two: the
// admission-table fill (attackfill.go) and the session-holding key
// (attackkey.go); last, for ours only, slow clients on the built-in
// coordinator (attackcoord.go).

const (
	floodConns    = 300
	floodSource   = "127.0.3.1"
	probeSource   = "127.0.3.2"
	probeWorkers  = 4
	probeKeys     = 20
	floodRedialMs = 100
)

// attackResult is (g) for one server.
type attackResult struct {
	Quiet       *stat // agent round trip without attack, ms
	Attacked    *stat // the same under attack, ms
	FirstTry    int   // attacked round trips that succeeded on their first try
	Tries       int
	FloodHeld   int   // flood connections open (banner or not) at the end
	FloodBanner int64 // flood connections that got any bytes (a version line, or sshd's "Exceeded MaxStartups")
	ProbeConns  int64 // prober connections attempted
	ProbeBanner int64 // ... that got any bytes
	ProbeSecs   float64
	Before      procState // server before the attack
	During      procState // server at the end of the attacked round trips
	After       procState // after the fleet, attack still running
	FleetOK     *stat
	FleetWall   *stat
	// The fleet before the attack.
	FleetQuietOK   *stat
	FleetQuietWall *stat
	// Round two, each after the flood and the probe have stopped: the
	// admission-table fill (attackfill.go), the session-holding key
	// (attackkey.go), and for ours slow clients on the built-in
	// coordinator (attackcoord.go; OpenSSH has no coordinator).
	Fill        *fillResult  `json:",omitempty"`
	Key         *keyResult   `json:",omitempty"`
	Coordinator *coordResult `json:",omitempty"`
}

// attackParams size round two of (g).
type attackParams struct {
	FillSources  int           // sources of the fill
	FillDeadline time.Duration // the fill stops there if not done
	KeyConns     int           // the hostile key's connections at once, at most
	KeySessions  int           // ... and its sessions at once, at most
	CoordQuiet   time.Duration // legitimate coordinator calls, quiet
	CoordAttack  time.Duration // ... then under attack
}

func attackParamsFor(quick bool) attackParams {
	if quick {
		// The whole table still: ours takes 65,536 sources in seconds;
		// sshd's fill stops at the deadline (it keeps no table).
		return attackParams{FillSources: 65536, FillDeadline: 60 * time.Second, KeyConns: 110, KeySessions: 160,
			CoordQuiet: 5 * time.Second, CoordAttack: 15 * time.Second}
	}
	return attackParams{FillSources: 65536, FillDeadline: 120 * time.Second, KeyConns: 150, KeySessions: 300,
		CoordQuiet: 10 * time.Second, CoordAttack: 30 * time.Second}
}

// procState is memory and open file descriptors of a server's process tree.
type procState struct {
	Procs  int
	RSSKiB int64
	PSSKiB int64
	FDs    int
}

func serverState(pid int) procState {
	m, _ := treeMem(pid)
	st := procState{Procs: m.Procs, RSSKiB: m.RSS, PSSKiB: m.PSS}
	for _, p := range tree(pid) {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		st.FDs += len(ents)
	}
	return st
}

// attacker runs the flood and the probe against one port until stopped.
type attacker struct {
	addr        string
	stop        chan struct{}
	wg          sync.WaitGroup
	held        atomic.Int64
	floodBanner atomic.Int64
	probeConns  atomic.Int64
	probeBanner atomic.Int64
	started     time.Time
}

func startAttack(port int) (*attacker, error) {
	a := &attacker{addr: net.JoinHostPort("127.0.0.1", fmt.Sprint(port)), stop: make(chan struct{}), started: time.Now()}
	var keys []gossh.Signer
	for range probeKeys {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := gossh.NewSignerFromKey(priv)
		if err != nil {
			return nil, err
		}
		keys = append(keys, s)
	}
	for range floodConns {
		a.wg.Add(1)
		go a.flood()
	}
	for range probeWorkers {
		a.wg.Add(1)
		go a.probe(keys)
	}
	return a, nil
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func dialer(src string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
}

// flood holds one idle connection, and redials when the server closes it.
func (a *attacker) flood() {
	defer a.wg.Done()
	keepDialing(a.stop, dialer(floodSource), a.addr, floodRedialMs*time.Millisecond, func(c net.Conn) {
		a.held.Add(1)
		buf := make([]byte, 256)
		got := false
		for {
			n, err := c.Read(buf)
			if n > 0 && !got {
				got = true
				a.floodBanner.Add(1)
			}
			if err != nil {
				break
			}
		}
	}, func(err error) {
		if err == nil {
			a.held.Add(-1)
		}
	})
}

// keepDialing dials addr with d again and again until stop closes,
// pausing every between tries. A connection is closed when stop closes or
// once use returns; after runs at the end of every try, with the dial's
// error.
func keepDialing(stop <-chan struct{}, d *net.Dialer, addr string, every time.Duration, use func(net.Conn), after func(error)) {
	for !closed(stop) {
		c, err := d.Dial("tcp", addr)
		if err == nil {
			done := make(chan struct{})
			go func() {
				select {
				case <-stop:
					c.Close()
				case <-done:
				}
			}()
			use(c)
			close(done)
			c.Close()
		}
		after(err)
		select {
		case <-stop:
			return
		case <-time.After(every):
		}
	}
}

// probe offers unknown keys, one connection after another, with no pause.
func (a *attacker) probe(keys []gossh.Signer) {
	defer a.wg.Done()
	d := dialer(probeSource)
	cfg := &gossh.ClientConfig{User: loginUser, Auth: []gossh.AuthMethod{gossh.PublicKeys(keys...)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second}
	for !closed(a.stop) {
		nc, err := d.Dial("tcp", a.addr)
		a.probeConns.Add(1)
		if err != nil {
			continue
		}
		cc := &agenttest.CountingConn{Conn: nc}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if c, _, _, err := gossh.NewClientConn(cc, a.addr, cfg); err == nil {
			c.Close()
		}
		if cc.BytesRead() > 0 {
			a.probeBanner.Add(1)
		}
		nc.Close()
	}
}

func (a *attacker) end() {
	close(a.stop)
	a.wg.Wait()
}

// attack is measurement (g) for every side.
func (b *bench) attack(ctx context.Context, runs int, p attackParams) (map[string]*attackResult, error) {
	if b.fleetData == "" {
		b.fleetData = filepath.Join(b.work, "data", "fleet")
		if _, err := smallFiles(b.fleetData, 500, 3); err != nil {
			return nil, err
		}
	}
	port, err := agenttest.PickFreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	// The session-holding key's machine: registered, not in the fleet.
	hostileMachine := b.filler[len(b.fleet)]
	out := map[string]*attackResult{}
	for _, srv := range b.servers() {
		r := &attackResult{Quiet: &stat{Unit: "ms"}, Attacked: &stat{Unit: "ms"}}
		out[srv.name] = r
		// The agent and the fleet, registered once: setMachines restarts
		// serve, which must not happen during the attack.
		for _, m := range b.fleet {
			if err := m.writeKey(b.s.keyDir); err != nil {
				return nil, err
			}
		}
		if err := b.s.setMachines(ctx, append([]*machine{hostileMachine, b.agent}, b.fleet...)); err != nil {
			return nil, err
		}
		pid := b.s.serve.Process.Pid
		if srv.name == "openssh" {
			pid = b.s.sshd.Process.Pid
		}
		run := agentRun{serverPort: srv.port, m: b.agent, fwdPort: port, fwdHost: "127.0.0.2",
			request: checkinRequest(port, map[string]any{})}
		for i := range runs + 2 {
			d, _, err := b.s.runAgent(ctx, run, time.Minute)
			if err != nil {
				return nil, fmt.Errorf("%s quiet round trip: %w", srv.name, err)
			}
			if i >= 2 {
				r.Quiet.add(float64(d) / float64(time.Millisecond))
			}
		}
		// The fleet backs up once before the attack, as it does every
		// night: its addresses are then known to serve (admission.go).
		r.FleetQuietOK, r.FleetQuietWall, err = b.fleetOn(ctx, srv.name)
		if err != nil {
			return nil, err
		}
		r.Before = serverState(pid)
		b.logf("  %s: quiet %.1f ms; %+v; starting the attack", srv.name, r.Quiet.Median(), r.Before)
		a, err := startAttack(srv.port)
		if err != nil {
			return nil, err
		}
		// Let the flood fill whatever it can before the agent comes.
		time.Sleep(5 * time.Second)
		for range runs {
			r.Tries++
			d, stderr, err := b.s.runAgent(ctx, run, time.Minute)
			if err != nil {
				r.Attacked.Errors = append(r.Attacked.Errors, failureLines(stderr))
				continue
			}
			r.FirstTry++
			r.Attacked.add(float64(d) / float64(time.Millisecond))
		}
		r.During = serverState(pid)
		b.logf("  %s: attacked %d/%d first try, %.1f ms; %+v", srv.name, r.FirstTry, r.Tries, r.Attacked.Median(), r.During)

		r.FleetOK, r.FleetWall, err = b.fleetOn(ctx, srv.name)
		if err != nil {
			a.end()
			return nil, err
		}
		r.After = serverState(pid)
		r.FloodHeld = int(a.held.Load())
		r.ProbeSecs = time.Since(a.started).Seconds()
		a.end()
		r.FloodBanner, r.ProbeConns, r.ProbeBanner = a.floodBanner.Load(), a.probeConns.Load(), a.probeBanner.Load()
		b.logf("  %s: fleet %v/%d; flood held %d, %d banners; probe %d connections, %d banners in %.0f s; %+v",
			srv.name, r.FleetOK.Runs, len(b.fleet), r.FloodHeld, r.FloodBanner, r.ProbeConns, r.ProbeBanner, r.ProbeSecs, r.After)

		if srv.name == "openssh" {
			waitNoChildren(pid) // the flood's pre-auth processes
		}
		b.logf("  %s: admission-table fill, %d sources", srv.name, p.FillSources)
		if r.Fill, err = b.fill(ctx, srv, pid, p, runs); err != nil {
			return nil, err
		}
		if srv.name == "openssh" {
			waitNoChildren(pid)
		}
		b.logf("  %s: session-holding key, up to %d connections and %d sessions", srv.name, p.KeyConns, p.KeySessions)
		if r.Key, err = b.holdingKey(ctx, srv, pid, hostileMachine, p); err != nil {
			return nil, err
		}
	}
	if r := out["ours"]; r != nil {
		b.logf("  ours: slow clients on the built-in coordinator")
		var err error
		if r.Coordinator, err = b.coordinatorAttack(ctx, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fleetOn has the whole fleet back up once, at once, to the server named
// only, and returns how many succeeded and the wall time.
func (b *bench) fleetOn(ctx context.Context, only string) (ok, wall *stat, err error) {
	b.only, b.machinesSet = only, true
	oks, walls, _, err := b.concurrent(ctx, len(b.fleet), portSeed, 1)
	b.only, b.machinesSet = "", false
	if err != nil {
		return nil, nil, err
	}
	return oks[only], walls[only], nil
}
