//go:build bench

package main

import (
	"context"
	"strconv"
	"time"
)

// scaleResult is (h)'s fleet-size check: the session round trip of (a)
// with 1,000 and with Big machines registered (the agent's key last), and
// the servers' memory once serve has loaded Big machines.
type scaleResult struct {
	Big int `json:"machines"`
	// RoundTrip is per side and machine count ("1000", "100000"), ms.
	RoundTrip map[string]map[string]*stat `json:"round_trip_ms"`
	// RSS 5 s after the last round trip with Big machines registered,
	// and after settle more (serve only: the runtime's periodic GC and
	// scavenger), MiB.
	IdleRSSMiB        map[string]float64 `json:"idle_rss_mib"`
	SettledRSSMiB     float64            `json:"ours_settled_rss_mib"`
	Settle            time.Duration      `json:"settle"`
	RoundTripRatioBig float64            `json:"ours_round_trip_big_over_1000"`
}

// scale measures the round trip at 1,000 and big machines, and the idle
// memory with big machines.
func (b *bench) scale(ctx context.Context, big, runs int, settle time.Duration) (*scaleResult, error) {
	if _, err := b.machines(big - 1); err != nil {
		return nil, err
	}
	res := &scaleResult{Big: big, RoundTrip: map[string]map[string]*stat{}, IdleRSSMiB: map[string]float64{}, Settle: settle}
	for _, n := range []int{1000, big} {
		b.logf("  round trip with %d machines registered", n)
		r, err := b.roundTrip(ctx, n, runs)
		if err != nil {
			return nil, err
		}
		for side, st := range r {
			if res.RoundTrip[side] == nil {
				res.RoundTrip[side] = map[string]*stat{}
			}
			res.RoundTrip[side][strconv.Itoa(n)] = st
		}
		b.logf("    ours %.1f ms, openssh %.1f ms", r["ours"].Median(), r["openssh"].Median())
	}
	if o := res.RoundTrip["ours"]; o != nil && o["1000"].Median() > 0 {
		res.RoundTripRatioBig = o[strconv.Itoa(big)].Median() / o["1000"].Median()
	}
	time.Sleep(5 * time.Second)
	for _, srv := range b.servers() {
		pid := b.s.sshd.Process.Pid
		if srv.name == "ours" {
			pid = b.s.serve.Process.Pid
		}
		m, err := treeMem(pid)
		if err != nil {
			return nil, err
		}
		res.IdleRSSMiB[srv.name] = kib(m.RSS)
	}
	if settle > 0 {
		b.logf("  waiting %v for serve to settle", settle)
		select {
		case <-time.After(settle):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		m, err := treeMem(b.s.serve.Process.Pid)
		if err != nil {
			return nil, err
		}
		res.SettledRSSMiB = kib(m.RSS)
	}
	b.logf("  idle RSS with %d machines: ours %.1f MiB (%.1f MiB after %v), openssh %.1f MiB", big, res.IdleRSSMiB["ours"], res.SettledRSSMiB, settle, res.IdleRSSMiB["openssh"])
	return res, nil
}
