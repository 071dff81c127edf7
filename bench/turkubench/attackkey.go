//go:build bench

package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Measurement (g), the session-holding key: one registered machine's
// valid key (the hostile machine, from 127.0.10.1) opens as many
// connections as it can, up to keyConns at once, and on each as many
// sessions as it can, up to sshd's MaxSessions of 10 and keyMaxSessions in
// all; each session runs the agent's command and then sends nothing.
// Whatever the server closes is reopened after keyRedial. With OpenSSH each
// session is its own forced command (`turku-storage ping`, waiting for its
// request). Meanwhile the 50 agents of (d) back up.
//
// The caps are this benchmark's, to keep the machine usable: sshd would
// give more.

const (
	keySource     = "127.0.10.1"
	keyPerConn    = 10 // sshd's MaxSessions default
	keyRedial     = 100 * time.Millisecond
	keyAgentCmd   = "turku-ping-remote"
	keySettleTime = 30 * time.Second
	// keyHandshakes bounds the key's unauthenticated connections at once,
	// under the per-source limit (ours: 10) and sshd's MaxStartups start
	// (10), so that what it meets is the limits on authenticated
	// connections and sessions, not admission.
	keyHandshakes = 8
)

// keyResult is the session-holding key against one server.
type keyResult struct {
	MaxConns    int // the caps of this run
	MaxSessions int
	// What the hostile key got: connections authenticated and sessions
	// started (in all, and the most at once), connections the server
	// refused or cut before authentication, sessions refused.
	Conns           int64
	ConnsMost       int64
	ConnsNow        int64 // open when the fleet had finished
	Sessions        int64
	SessionsMost    int64
	SessionsNow     int64
	ConnsFailed     int64
	SessionsRefused int64
	Secs            float64
	// The other machines: the 50 agents of (d), once.
	FleetOK   *stat
	FleetWall *stat
	Before    procState
	During    procState // before the fleet, the key settled
	End       procState // when the fleet had finished, key still on
	After     procState // once the key let go
}

// hostile is the key's connections.
type hostile struct {
	addr      string
	cfg       *gossh.ClientConfig
	maxConns  int
	maxSess   int64
	stop      chan struct{}
	wg        sync.WaitGroup
	conns     atomic.Int64 // in all
	connsNow  atomic.Int64
	connsMost atomic.Int64
	sess      atomic.Int64
	sessNow   atomic.Int64 // started and not ended
	sessMost  atomic.Int64
	sessSlots atomic.Int64 // sessNow and those being opened: the cap's count
	failed    atomic.Int64
	refused   atomic.Int64
	attempts  []atomic.Int64
	handshake chan struct{} // a place among keyHandshakes
}

func raiseMost(most *atomic.Int64, n int64) {
	for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
	}
}

func startHostile(addr string, m *machine, maxConns, maxSess int) (*hostile, error) {
	signer, err := gossh.NewSignerFromKey(m.priv)
	if err != nil {
		return nil, err
	}
	h := &hostile{addr: addr, maxConns: maxConns, maxSess: int64(maxSess), stop: make(chan struct{}),
		attempts: make([]atomic.Int64, maxConns), handshake: make(chan struct{}, keyHandshakes),
		cfg: &gossh.ClientConfig{User: loginUser, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
			HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}}
	for i := range maxConns {
		h.wg.Add(1)
		go h.hold(i)
	}
	return h, nil
}

// hold keeps one connection and its sessions open, reopening it when the
// server closes it.
func (h *hostile) hold(i int) {
	defer h.wg.Done()
	d := dialer(keySource)
	for !closed(h.stop) {
		h.once(d)
		h.attempts[i].Add(1)
		select {
		case <-h.stop:
			return
		case <-time.After(keyRedial):
		}
	}
}

func (h *hostile) once(d *net.Dialer) {
	select {
	case h.handshake <- struct{}{}:
	case <-h.stop:
		return
	}
	handshaking := true
	endHandshake := func() {
		if handshaking {
			handshaking = false
			<-h.handshake
		}
	}
	defer endHandshake()
	nc, err := d.Dial("tcp", h.addr)
	if err != nil {
		h.failed.Add(1)
		return
	}
	defer nc.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-h.stop:
			nc.Close()
		case <-done:
		}
	}()
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	c, chans, reqs, err := gossh.NewClientConn(nc, h.addr, h.cfg)
	if err != nil {
		h.failed.Add(1)
		return
	}
	nc.SetDeadline(time.Time{})
	endHandshake()
	client := gossh.NewClient(c, chans, reqs)
	defer client.Close()
	h.conns.Add(1)
	raiseMost(&h.connsMost, h.connsNow.Add(1))
	defer h.connsNow.Add(-1)
	var sessions sync.WaitGroup
	for range keyPerConn {
		// A place under the cap first, given back if the server says no.
		if n := h.sessSlots.Add(1); n > h.maxSess {
			h.sessSlots.Add(-1)
			break
		}
		s, err := client.NewSession()
		if err != nil {
			h.sessSlots.Add(-1)
			h.refused.Add(1)
			break
		}
		// Its stdin stays open and empty: the request never comes.
		if _, err := s.StdinPipe(); err != nil {
			h.sessSlots.Add(-1)
			s.Close()
			break
		}
		if err := s.Start(keyAgentCmd); err != nil {
			h.sessSlots.Add(-1)
			h.refused.Add(1)
			s.Close()
			break
		}
		h.sess.Add(1)
		raiseMost(&h.sessMost, h.sessNow.Add(1))
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			s.Wait()
			h.sessNow.Add(-1)
			h.sessSlots.Add(-1)
		}()
	}
	client.Wait() // until the server closes the connection, or stop
	client.Close()
	sessions.Wait()
}

// settled reports whether every connection slot was tried at least once.
func (h *hostile) settled() bool {
	for i := range h.attempts {
		if h.attempts[i].Load() < 1 && h.connsNow.Load() < int64(h.maxConns) {
			return false
		}
	}
	return true
}

func (h *hostile) end() {
	close(h.stop)
	h.wg.Wait()
}

// holdingKey is the session-holding key against srv, whose process is
// pid.
func (b *bench) holdingKey(ctx context.Context, srv server, pid int, m *machine, p attackParams) (*keyResult, error) {
	r := &keyResult{MaxConns: p.KeyConns, MaxSessions: p.KeySessions, Before: serverState(pid)}
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(srv.port))
	start := time.Now()
	h, err := startHostile(addr, m, p.KeyConns, p.KeySessions)
	if err != nil {
		return nil, err
	}
	stop := sync.OnceFunc(h.end)
	defer stop()
	// Every connection slot has been tried (or all are open); then a
	// little longer for the sessions of the last ones to start.
	waitUntil(ctx, keySettleTime, func() bool { return h.settled() && h.sessNow.Load() >= min(h.connsNow.Load(), h.maxSess) })
	r.During = serverState(pid)
	b.logf("  %s: hostile key holds %d connections, %d sessions; %+v", srv.name, h.connsNow.Load(), h.sessNow.Load(), r.During)

	r.FleetOK, r.FleetWall, err = b.fleetOn(ctx, srv.name)
	if err != nil {
		return nil, err
	}
	r.End = serverState(pid)
	r.ConnsNow, r.SessionsNow = h.connsNow.Load(), h.sessNow.Load()
	r.Secs = time.Since(start).Seconds()
	stop()
	r.Conns, r.ConnsMost, r.Sessions, r.SessionsMost = h.conns.Load(), h.connsMost.Load(), h.sess.Load(), h.sessMost.Load()
	r.ConnsFailed, r.SessionsRefused = h.failed.Load(), h.refused.Load()
	if srv.name == "openssh" {
		waitNoChildren(pid) // the sessions' processes
	}
	r.After = serverState(pid)
	b.logf("  %s: fleet %v; hostile key: %d connections (most %d), %d sessions (most %d), %d failed, %d sessions refused in %.0f s; %+v",
		srv.name, r.FleetOK.Runs, r.Conns, r.ConnsMost, r.Sessions, r.SessionsMost, r.ConnsFailed, r.SessionsRefused, r.Secs, r.End)
	return r, nil
}
