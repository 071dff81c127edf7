package sshserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// restart shuts ts down as serve does on SIGTERM and waits for Serve to
// return, leaving its result for startServer's cleanup.
func (ts *testServer) restart(t *testing.T) {
	t.Helper()
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := <-ts.serve
	ts.serve <- err
}

// TestKnownSourcesSurviveRestart: an agent that logged in before a
// restart is still known after it, so a stranger's share being taken does
// not keep it out; a day after its last login it is a stranger again.
func TestKnownSourcesSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history", "known-sources")
	clock := newFakeClock()
	tweak := func(o *Options) {
		o.Now = clock.Now
		o.KnownSourcesFile = path
		// One stranger takes the strangers' share (start 1, rate 100).
		o.MaxStartups = MaxStartups{Start: 1, Rate: 100, Full: 4}
		o.HandshakeTimeout = time.Hour
		o.LoginGraceTime = time.Hour
	}
	first := startServer(t, tweak)
	c, err := first.loginFrom("127.0.4.1", first.keys[uuidA])
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	first.restart(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("127.0.4.1/32 %d\n", clock.Now().Unix()); !strings.Contains(string(b), want) {
		t.Fatalf("saved known sources:\n%s\nwant a line %q", b, want)
	}

	for _, tt := range []struct {
		name  string
		after time.Duration
		known bool
	}{
		{"23 hours later", 23 * time.Hour, true},
		{"25 hours later", 2 * time.Hour, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock.Add(tt.after)
			// A copy: this server saves its own on the way out.
			own := filepath.Join(t.TempDir(), "known-sources")
			if err := os.WriteFile(own, b, 0o600); err != nil {
				t.Fatal(err)
			}
			ts := startServer(t, func(o *Options) {
				tweak(o)
				o.KnownSourcesFile = own
			})
			ts.adm.mu.Lock()
			ts.adm.wait = 0 // a stranger is dropped at once, not after a wait
			ts.adm.mu.Unlock()
			// Serve has loaded the file once it accepts.
			if held := flood(t, "127.0.4.9", ts.addr, 1); len(held) != 1 {
				t.Fatal("the first stranger was refused")
			}
			c, err := ts.loginFrom("127.0.4.1", ts.keys[uuidA])
			if got := err == nil; got != tt.known {
				t.Errorf("agent after the restart got in: %v (%v), want %v", got, err, tt.known)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

// TestKnownSourcesFile: what a damaged or foreign file yields: the
// sources before the damage, never an error that stops the server.
func TestKnownSourcesFile(t *testing.T) {
	now := newFakeClock().Now()
	ts := func(d time.Duration) string { return fmt.Sprint(now.Add(-d).Unix()) }
	tests := []struct {
		name    string
		content string
		want    []string // sources loaded
		err     bool
	}{
		{name: "valid", content: knownHeader + "\n192.0.2.1/32 " + ts(time.Hour) + "\n2001:db8:1:2::/64 " + ts(2*time.Hour) + "\n",
			want: []string{"192.0.2.1/32", "2001:db8:1:2::/64"}},
		{name: "expired dropped", content: knownHeader + "\n192.0.2.1/32 " + ts(time.Hour) + "\n192.0.2.2/32 " + ts(25*time.Hour) + "\n",
			want: []string{"192.0.2.1/32"}},
		{name: "empty", content: "", err: true},
		{name: "foreign", content: "{\"machines\": {}}\n", err: true},
		{name: "cut short", content: knownHeader + "\n192.0.2.1/32 " + ts(time.Hour) + "\n192.0.2.2/3", err: true,
			want: []string{"192.0.2.1/32"}},
		{name: "not a source", content: knownHeader + "\n192.0.2.1/32 " + ts(time.Hour) + "\n192.0.2.0/24 " + ts(time.Hour) + "\n", err: true,
			want: []string{"192.0.2.1/32"}},
		{name: "IPv6 not a /64", content: knownHeader + "\n2001:db8::1/128 " + ts(time.Hour) + "\n", err: true},
		{name: "bad time", content: knownHeader + "\n192.0.2.1/32 yesterday\n", err: true},
		{name: "line too long", content: knownHeader + "\n" + strings.Repeat("1", 200) + "\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := readKnown(strings.NewReader(tt.content))
			if (err != nil) != tt.err {
				t.Errorf("error %v, want one: %v", err, tt.err)
			}
			if err != nil && !errors.Is(err, errKnownDamaged) {
				t.Errorf("error %v, want errKnownDamaged", err)
			}
			a := newAdmission(&Server{opts: Options{Now: func() time.Time { return now }, MaxStartups: DefaultMaxStartups},
				logger: slog.New(slog.DiscardHandler)})
			a.loadKnown(entries)
			var got []string
			for k := range a.known {
				got = append(got, k.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("loaded %v, want %v", got, tt.want)
			}
			for _, w := range tt.want {
				if _, ok := a.known[keyOf(netip.MustParsePrefix(w))]; !ok {
					t.Errorf("loaded %v, want %s among them", got, w)
				}
			}
		})
	}
}

// TestKnownSourcesDamagedFileNotFatal: a server whose file is garbage
// starts, serves, and replaces it with a good one when it stops.
func TestKnownSourcesDamagedFileNotFatal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known-sources")
	if err := os.WriteFile(path, []byte("\x00\x01garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	logger, logs := captureLog(t)
	ts := startServer(t, func(o *Options) {
		o.KnownSourcesFile = path
		o.Logger = logger
	})
	c, err := ts.loginFrom("127.0.4.2", ts.keys[uuidA])
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ts.restart(t)
	if logs.count("known sources file damaged") != 1 {
		t.Errorf("damaged file not logged:\n%s", logs.String())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := readKnown(f)
	if err != nil || len(entries) != 1 || entries[0].key.String() != "127.0.4.2/32" {
		t.Errorf("saved %v (%v), want 127.0.4.2/32 alone", entries, err)
	}
}

// TestKnownTableSizedToFleet: a fleet of 100,000 machines is remembered
// whole, twice over, however the table's minimum compares; beyond the
// bound the oldest make room.
func TestKnownTableSizedToFleet(t *testing.T) {
	clock := newFakeClock()
	a := testAdmission(clock, nil, nil)
	const machines = 100_000
	a.setFleet(machines)
	bound := knownBound(machines)
	if bound < 2*machines {
		t.Fatalf("bound %d for %d machines, want at least twice", bound, machines)
	}
	for i := range bound + 1000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		if ok, why := a.admit(p); !ok {
			t.Fatalf("agent %d refused (%s)", i, why)
		}
		a.release(p, outcomeAuthenticated)
		if i == bound-1 && len(a.known) != bound {
			t.Fatalf("%d known after %d agents, want every one", len(a.known), bound)
		}
	}
	if n := len(a.known); n > bound {
		t.Errorf("%d known, want at most %d", n, bound)
	}
}
