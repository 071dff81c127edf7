package sshserver

// A source table filled by a distributed attack (one connect-and-close
// from each of 65,536 sources) must not switch admission off: new sources
// still get the per-source limit and penalties, an agent that logs in is
// remembered as known, and the table's memory stays bounded.

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// fillSources sends one connect-and-close from each of n sources made by
// src(i), as a scanner with a large address block would; admission may
// refuse some of them (a /48 is penalised as one source).
func fillSources(a *admission, n int, src func(i int) netip.Prefix) {
	for i := range n {
		p := src(i)
		if ok, _ := a.admit(p); ok {
			a.release(p, outcomeNoAuth)
		}
	}
}

// every64Of48 is the i-th /64 of 2001:db8:7::/48.
func every64Of48(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 7, byte(i >> 8), byte(i)}), 64)
}

// ipv4Source is the i-th address of 10.0.0.0/8.
func ipv4Source(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// maxTableHeap is the stated bound on what admission's tables hold once
// full, for a fleet of fleetMachines (docs/operations.md, "Facing the
// internet"): the strangers' table and knownBound(fleetMachines) known
// sources.
const (
	fleetMachines = 100_000
	maxTableHeap  = 32 << 20
)

// TestSourceTableFull: after 65,536 sources each connected and closed
// once, a new source is still held to the per-source limit and earns
// penalties, an agent that authenticates is known (it may use the slots
// kept for known sources), and the table's memory stays under its bound.
func TestSourceTableFull(t *testing.T) {
	fills := []struct {
		name string
		src  func(i int) netip.Prefix
		// fresh is a source the fill never used.
		fresh func(i int) netip.Prefix
		// records bounds the strangers remembered after the fill.
		records int
	}{
		{"every /64 of one IPv6 /48", every64Of48, func(i int) netip.Prefix {
			return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, byte(i)}), 64)
		}, maxPer48 + 1},
		{"IPv4 addresses", ipv4Source, func(i int) netip.Prefix {
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32)
		}, maxSources},
	}
	for _, tt := range fills {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			before := heapInUse()
			a := testAdmission(clock, nil, nil)
			a.rand = func(n int) int { return n - 1 } // no random drops: the limits alone decide
			fillSources(a, 1<<16, tt.src)
			// Twice over, so that the table stays as full as it gets.
			fillSources(a, 1<<16, func(i int) netip.Prefix { return tt.src(i + 1<<16) })
			if n := len(a.strangers); n > tt.records {
				t.Errorf("%d strangers remembered after the fill, want at most %d", n, tt.records)
			}
			// And agents of a fleet of fleetMachines log in from more
			// addresses than are remembered as known.
			a.setFleet(fleetMachines)
			for i := range knownBound(fleetMachines) + 1000 {
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)}), 32)
				if ok, why := a.admit(p); !ok {
					t.Fatalf("agent %d refused (%s)", i, why)
				}
				a.release(p, outcomeAuthenticated)
			}
			clock.Add(2 * time.Second) // every fill penalty served
			grown := heapInUse() - before
			t.Logf("admission after the fill: %.1f MiB", float64(grown)/(1<<20))
			if grown > maxTableHeap {
				t.Errorf("admission holds %.1f MiB after the fill, want at most %d MiB", float64(grown)/(1<<20), maxTableHeap>>20)
			}

			// A stalling new source holds its per-source share, no more.
			stall := tt.fresh(1)
			for i := range DefaultPerSourceMaxStartups {
				if ok, why := a.admit(stall); !ok {
					t.Fatalf("stalling source, connection %d: refused (%s)", i+1, why)
				}
			}
			if ok, _ := a.admit(stall); ok {
				t.Errorf("stalling source got connection %d, want the per-source limit %d", DefaultPerSourceMaxStartups+1, DefaultPerSourceMaxStartups)
			}

			// A new source that fails keys is penalised.
			prober := tt.fresh(2)
			for range 3 {
				if ok, why := a.admit(prober); !ok {
					t.Fatalf("prober refused (%s) before its penalty", why)
				}
				a.release(prober, outcomeAuthFail)
			}
			if ok, why := a.admit(prober); ok || why != refusedPenalty {
				t.Errorf("prober after 3 failures: got %v %q, want refused for its penalty", ok, why)
			}

			// An agent that first logs in now is remembered as known: with
			// the strangers' share taken, it still gets in.
			agent := tt.fresh(3)
			if ok, why := a.admit(agent); !ok {
				t.Fatalf("agent refused (%s)", why)
			}
			a.release(agent, outcomeAuthenticated)
			for i := 0; a.total < a.strangerFull; i++ {
				if ok, why := a.admit(tt.fresh(10 + i)); !ok {
					t.Fatalf("stranger %d refused (%s) with %d of %d held", i, why, a.total, a.strangerFull)
				}
			}
			if ok, _ := a.admit(tt.fresh(200)); ok {
				t.Errorf("a stranger got in beyond the strangers' share")
			}
			if ok, why := a.admit(agent); !ok {
				t.Errorf("agent that authenticated after the fill: refused (%s), want known", why)
			}
		})
	}
}

// TestE2ETableFullAgentFirstLogin: with the source table filled (driven
// directly, as 65,536 one-shot sources would), one stalling address holds
// no more than its per-source share, and a real agent that logs in for the
// first time backs up on its first try, and again on its next while
// strangers hold every stranger slot.
func TestE2ETableFullAgentFirstLogin(t *testing.T) {
	requireTools(t)
	clock := newFakeClock()
	ts := startServer(t, func(o *Options) {
		o.Now = clock.Now
		o.HandshakeTimeout = time.Hour
		o.LoginGraceTime = time.Hour
	})
	ts.adm.mu.Lock()
	ts.adm.rand = func(n int) int { return n - 1 } // no random drops: the limits alone decide
	ts.adm.mu.Unlock()
	fillSources(ts.adm, 1<<16, ipv4Source)
	clock.Add(2 * time.Second)

	key := ts.setAgents(t, map[string]string{uuidA: "web1"})[uuidA]
	pulled := t.TempDir()
	ts.puller.pull = rsyncPull(t, pulled)

	if held := flood(t, "127.0.0.20", ts.addr, 100); len(held) > DefaultPerSourceMaxStartups {
		t.Errorf("stalling source holds %d connections, want at most %d", len(held), DefaultPerSourceMaxStartups)
	}

	etc := t.TempDir()
	want := writeTree(t, etc, "web1")
	rsyncd := agenttest.StartRsyncd(t, "127.0.0.2", []agenttest.Module{agentModule("etc", etc, false)})
	backup := func(what string) {
		t.Helper()
		ping := ts.agentPing(key, rsyncd.Host, rsyncd.Port, checkinJSON(rsyncd.Port, "etc"))
		ping.ExtraArgs = []string{"-b", "127.0.0.21"}
		if res := ping.Start(t).Wait(t, e2eWait); res.ExitCode != 0 {
			t.Fatalf("%s: ssh exit %d, stderr:\n%s", what, res.ExitCode, res.Stderr)
		}
	}
	backup("agent's first login after the fill")
	checkTree(t, filepath.Join(pulled, uuidA, "etc"), want)

	// Strangers take every slot they may; the agent, now known, still
	// gets in.
	held := 0
	for i := 22; i < 40 && held < ts.adm.strangerFull-DefaultPerSourceMaxStartups; i++ {
		held += len(flood(t, fmt.Sprintf("127.0.0.%d", i), ts.addr, DefaultPerSourceMaxStartups))
	}
	backup("agent's second login, strangers' share taken")
}

// TestSourceTableOverflow: when every remembered stranger serves a
// penalty, nothing can be forgotten; sources that find no room share one
// overflow record, held to the per-source limit together, and get places
// of their own again once penalties are served.
func TestSourceTableOverflow(t *testing.T) {
	clock := newFakeClock()
	a := testAdmission(clock, nil, nil)
	a.rand = func(n int) int { return n - 1 }
	for i := range maxSources {
		refuseKeys(t, a, ipv4Source(i), 3) // a 15 s penalty
	}
	first, second := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")
	for i := range DefaultPerSourceMaxStartups {
		if ok, why := a.admit(first); !ok {
			t.Fatalf("first overflowing source, connection %d: refused (%s)", i+1, why)
		}
	}
	if ok, why := a.admit(second); ok || why != refusedPerSource {
		t.Errorf("second overflowing source: got %v %q, want the shared per-source limit", ok, why)
	}
	for range DefaultPerSourceMaxStartups {
		a.release(first, outcomeNone)
	}
	if a.overflow.startups != 0 || a.total != 0 {
		t.Errorf("overflow holds %d, total %d after every connection ended; want 0, 0", a.overflow.startups, a.total)
	}
	clock.Add(DefaultPenalties.Max)
	if ok, why := a.admit(second); !ok {
		t.Fatalf("after the penalties: refused (%s)", why)
	}
	if _, ok := a.strangers[keyOf(second)]; !ok {
		t.Errorf("second source has no record of its own once the penalties were served")
	}
}

// TestPenaltyLinesSummarised: a distributed attack penalising many
// sources names penaltyLines of them a minute and counts the others in
// one line.
func TestPenaltyLinesSummarised(t *testing.T) {
	clock := newFakeClock()
	logger, logs := captureLog(t)
	a := testAdmission(clock, logger, nil)
	const sources = 100
	for i := range sources {
		refuseKeys(t, a, ipv4Source(i), 3) // a 15 s penalty
	}
	clock.Add(summaryEvery)
	a.admit(netip.MustParsePrefix("192.0.2.1/32"))
	if n := logs.count("source penalised"); n != penaltyLines {
		t.Errorf("%d sources named as penalised, want %d", n, penaltyLines)
	}
	if n := logs.count("more sources penalised than named", fmt.Sprintf(" sources=%d ", sources-penaltyLines)); n != 1 {
		t.Errorf("%d summaries of %d unnamed penalties, want 1:\n%s", n, sources-penaltyLines, logs.String())
	}
}
