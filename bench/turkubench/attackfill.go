//go:build bench

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// Measurement (g), the admission-table fill: one connection from each of
// many sources (127.64.0.1 on: any 127.x address can be bound as the
// source on Linux), each reset as soon as the server's version line came,
// so that every source is one the server has seen once and never again.
// Then one stalling source (127.0.6.1) tries to hold stallConns
// unauthenticated connections, and an agent whose address the server has
// never seen (127.0.5.N, a new one for each try) runs its round trip: it
// must get in on the first try. The 50 agents of (d), whose addresses the
// server knows, back up once more with the stall still on.

const (
	fillFirst    = "127.64.0.1" // the first fill source; the others follow it
	stallSource  = "127.0.6.1"
	stallConns   = 100 // sshd's MaxStartups full; above ours' stranger limit
	stallRedial  = 100 * time.Millisecond
	fillWorkers  = 8
	freshAgentAt = "127.0.5.%d" // the agent's addresses after the fill
)

// fillResult is the fill for one server.
type fillResult struct {
	Sources int     // sources tried
	Banners int64   // ... whose connection got the version line
	Refused int64   // ... closed by the server without one
	Failed  int64   // ... that could not connect or timed out
	Secs    float64 // time to fill
	Stopped bool    `json:",omitempty"` // the deadline ended it early
	Before  procState
	After   procState // right after the fill
	// The stalling source: connections it held (version line received,
	// still open) when the agent came, the most at any time, and its
	// connections refused.
	StallHeld    int64
	StallMost    int64
	StallRefused int64
	// The agent, from an address never seen before.
	Agent    *stat
	FirstTry int
	Tries    int
	// The 50 agents with the stall on, and the server after them.
	FleetOK   *stat
	FleetWall *stat
	End       procState
}

// fillTable connects once from each of n sources, fillWorkers at a time,
// until done or deadline.
func fillTable(ctx context.Context, addr string, n int, deadline time.Duration, r *fillResult) {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	first := netip.MustParseAddr(fillFirst).As4()
	base := uint32(first[0])<<24 | uint32(first[1])<<16 | uint32(first[2])<<8 | uint32(first[3])
	next := atomic.Int64{}
	start := time.Now()
	var wg sync.WaitGroup
	for range fillWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				v := base + uint32(i)
				src := net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
				switch err := touch(ctx, addr, src); {
				case err == nil:
					atomic.AddInt64(&r.Banners, 1)
				case errors.Is(err, errNoBanner):
					atomic.AddInt64(&r.Refused, 1)
				default:
					atomic.AddInt64(&r.Failed, 1)
				}
			}
		}()
	}
	wg.Wait()
	r.Secs = time.Since(start).Seconds()
	r.Sources = int(min(next.Load(), int64(n)))
	r.Stopped = ctx.Err() != nil && r.Sources < n
}

var errNoBanner = errors.New("closed without a version line")

// touch connects from src, waits for the version line and resets the
// connection (SO_LINGER 0: no TIME_WAIT left on our side for each of tens
// of thousands of sources).
func touch(ctx context.Context, addr string, src net.IP) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.(*net.TCPConn).SetLinger(0)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if gotBanner(c) {
		return nil
	}
	return errNoBanner
}

// gotBanner reports whether c's first bytes are an SSH version line. sshd
// writes "Exceeded MaxStartups" before it closes a dropped connection.
func gotBanner(c net.Conn) bool {
	buf := make([]byte, 4)
	_, err := io.ReadFull(c, buf)
	return err == nil && string(buf) == "SSH-"
}

// staller holds up to stallConns unauthenticated connections from one
// source, each sending nothing, and reopens each one the server closes
// after stallRedial.
type staller struct {
	addr     string
	stop     chan struct{}
	wg       sync.WaitGroup
	held     atomic.Int64
	most     atomic.Int64
	refused  atomic.Int64
	attempts []atomic.Int64 // per connection slot
	holding  []atomic.Bool  // per connection slot: has one open now
}

func startStall(addr string) *staller {
	s := &staller{addr: addr, stop: make(chan struct{}), attempts: make([]atomic.Int64, stallConns),
		holding: make([]atomic.Bool, stallConns)}
	for i := range stallConns {
		s.wg.Add(1)
		go s.hold(i)
	}
	return s
}

func (s *staller) hold(i int) {
	defer s.wg.Done()
	keepDialing(s.stop, dialer(stallSource), s.addr, stallRedial, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if gotBanner(c) {
			c.SetReadDeadline(time.Time{})
			s.holding[i].Store(true)
			raiseMost(&s.most, s.held.Add(1))
			io.Copy(io.Discard, c) // until the server gives up on it
			s.held.Add(-1)
			s.holding[i].Store(false)
		} else {
			s.refused.Add(1)
		}
	}, func(error) { s.attempts[i].Add(1) })
}

// settled reports whether every slot holds a connection or has been
// refused three times.
func (s *staller) settled() bool {
	for i := range s.attempts {
		if !s.holding[i].Load() && s.attempts[i].Load() < 3 {
			return false
		}
	}
	return true
}

func (s *staller) end() {
	close(s.stop)
	s.wg.Wait()
}

// waitUntil polls cond every 20 ms until it holds, ctx ends or timeout
// passes; it reports whether cond held.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// fill is the admission-table fill against srv, whose process is pid.
func (b *bench) fill(ctx context.Context, srv server, pid int, p attackParams, runs int) (*fillResult, error) {
	r := &fillResult{Agent: &stat{Unit: "ms"}, Before: serverState(pid)}
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(srv.port))
	fillTable(ctx, addr, p.FillSources, p.FillDeadline, r)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	r.After = serverState(pid)
	b.logf("  %s: fill: %d sources in %.1f s (%d version lines, %d refused, %d failed); %+v",
		srv.name, r.Sources, r.Secs, r.Banners, r.Refused, r.Failed, r.After)

	st := startStall(addr)
	defer st.end()
	waitUntil(ctx, 30*time.Second, st.settled)
	r.StallHeld = st.held.Load()
	port, err := agenttest.PickFreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	for i := range runs {
		r.Tries++
		run := agentRun{serverPort: srv.port, m: b.agent, fwdPort: port, fwdHost: "127.0.0.2",
			request: checkinRequest(port, map[string]any{}),
			extra:   []string{"-b", fmt.Sprintf(freshAgentAt, i+1)}}
		d, stderr, err := b.s.runAgent(ctx, run, time.Minute)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.Agent.Errors = append(r.Agent.Errors, failureLines(stderr))
			continue
		}
		r.FirstTry++
		r.Agent.add(float64(d) / float64(time.Millisecond))
	}
	b.logf("  %s: stall holds %d; fresh agent %d/%d first try, %.1f ms", srv.name, r.StallHeld, r.FirstTry, r.Tries, r.Agent.Median())

	r.FleetOK, r.FleetWall, err = b.fleetOn(ctx, srv.name)
	if err != nil {
		return nil, err
	}
	r.End = serverState(pid)
	r.StallMost, r.StallRefused = st.most.Load(), st.refused.Load()
	b.logf("  %s: fleet %v with the stall on; stall most %d, refused %d; %+v", srv.name, r.FleetOK.Runs, r.StallMost, r.StallRefused, r.End)
	return r, nil
}
