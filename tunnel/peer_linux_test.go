//go:build linux

package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

// countingOpener refuses every channel and counts the attempts.
type countingOpener struct {
	opened  atomic.Int64
	handled chan<- struct{} // if set, gets a value per attempt
}

// waitHandled waits until n connections were handled, or fails the test
// saying how many were, with what logs (the log, a child's stderr) hold.
func waitHandled(t *testing.T, handled <-chan struct{}, n int, logs ...fmt.Stringer) {
	t.Helper()
	for i := range n {
		select {
		case <-handled:
		case <-time.After(30 * time.Second):
			said := make([]string, len(logs))
			for j, l := range logs {
				said[j] = l.String()
			}
			t.Fatalf("only %d of %d connections handled: %s", i, n, strings.Join(said, " "))
		}
	}
}

func (o *countingOpener) OpenChannel(string, []byte) (gossh.Channel, <-chan *gossh.Request, error) {
	o.opened.Add(1)
	if o.handled != nil {
		o.handled <- struct{}{}
	}
	return nil, nil, errors.New("refused by test")
}

// loopbackConn returns the server side of a TCP connection this process
// made to itself on 127.0.0.1; both ends close when the test ends.
func loopbackConn(t *testing.T) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return server
}

func TestPeerUIDOwnConnection(t *testing.T) {
	server := loopbackConn(t)
	uid, err := peerUID(server)
	if err != nil {
		t.Fatal(err)
	}
	if uid != os.Getuid() {
		t.Errorf("got peer uid %d, want %d", uid, os.Getuid())
	}
	if err := sameUser(server); err != nil {
		t.Errorf("own connection refused: %v", err)
	}
}

// TestCheckinRefusesOtherUsers connects to a checkin endpoint as another
// user (nobody): the agent must never see that connection.
func TestCheckinRefusesOtherUsers(t *testing.T) {
	refusesOtherUsers(t, func(op Opener, log *slog.Logger) (*Endpoint, error) {
		return Checkin(context.Background(), op, "localhost", 50000, log)
	})
}

// refusesOtherUsers opens an endpoint with open and connects to it as
// another local user (nobody), with bash's /dev/tcp; the refusal must be
// logged and no channel opened to the agent.
func refusesOtherUsers(t *testing.T, open func(Opener, *slog.Logger) (*Endpoint, error)) {
	t.Helper()
	nobody := agenttest.AsNobody(t)
	op := &countingOpener{}
	var logs agenttest.Output
	// The session's logger already names the agent's SSH address as
	// "remote", as in serve; the local peer must not be logged under the
	// same key.
	ep, err := open(op, slog.New(slog.NewTextHandler(&logs, nil)).With("remote", "192.0.2.1:40000"))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()

	// The read returns at EOF when the endpoint closes the connection.
	cmd := exec.Command("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+strconv.Itoa(ep.Port())+" && cat <&3")
	cmd.SysProcAttr = nobody
	cmd.Stderr = io.Discard
	if err := cmd.Run(); err != nil {
		t.Fatalf("connect as nobody: %v", err)
	}
	if !contains(logs.String(), "tunnel connection refused") || !contains(logs.String(), "belongs to uid 65534") {
		t.Errorf("no refusal logged: %s", logs.String())
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if !contains(line, "tunnel connection refused") {
			continue
		}
		if n := strings.Count(line, " remote="); n != 1 || !contains(line, " peer=127.0.0.1:") {
			t.Errorf("refusal should name the agent once as remote and the local connection as peer: %s", line)
		}
	}
	if n := op.opened.Load(); n != 0 {
		t.Errorf("a foreign user's connection reached the agent (%d channels)", n)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestCheckinRefusesOrphanedSockets is the race of a local user who
// connects, writes and closes at once: the closed socket lingers in
// /proc/net/tcp as an orphan that shows uid 0 and no inode, which a root
// storage read as its own. No such connection may reach the agent.
func TestCheckinRefusesOrphanedSockets(t *testing.T) {
	nobody := agenttest.AsNobody(t)
	const tries = 100
	// Each connection ends either as a channel to the agent or as a
	// refusal; both signal handled.
	handled := make(chan struct{}, 2*tries)
	op := &countingOpener{handled: handled}
	var refused atomic.Int64
	var logs agenttest.Output
	ep, err := Checkin(context.Background(), op, "localhost", 50000, slog.New(slog.NewTextHandler(&logs, nil)),
		onRefused(func(error) { refused.Add(1); handled <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()

	script := "for i in $(seq " + strconv.Itoa(tries) + "); do exec 3<>/dev/tcp/127.0.0.1/" + strconv.Itoa(ep.Port()) +
		" && printf '@RSYNCD: 31.0\\n' >&3 && exec 3>&-; done"
	cmd := exec.Command("bash", "-c", script)
	cmd.SysProcAttr = nobody
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("connect as nobody: %v: %s", err, stderr.String())
	}
	waitHandled(t, handled, tries, &logs)
	if n := op.opened.Load(); n != 0 {
		t.Errorf("%d of %d orphaned connections of a foreign user reached the agent", n, tries)
	}
	if got := refused.Load(); got != tries {
		t.Errorf("got %d refusals, want %d", got, tries)
	}
	ep.Close() // the summary of the refusals after the first
	if got, want := refusalsLogged(t, logs.String()), int64(tries); got != want {
		t.Errorf("log accounts for %d refusals, want %d: %s", got, want, logs.String())
	}
}

// onRefused has f told of every refused connection.
func onRefused(f func(error)) Option { return func(e *Endpoint) { e.onRefused = f } }

// refusalsLogged counts the refusals a log accounts for: one per
// "tunnel connection refused" line, plus each summary's refused=N.
func refusalsLogged(t *testing.T, log string) int64 {
	t.Helper()
	var n int64
	for _, line := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(line, `msg="tunnel connection refused"`):
			n++
		case strings.Contains(line, `msg="tunnel connections refused since the last line"`):
			m := regexp.MustCompile(` refused=(\d+) `).FindStringSubmatch(line)
			if m == nil {
				t.Errorf("summary without a count: %s", line)
				continue
			}
			k, _ := strconv.ParseInt(m[1], 10, 64)
			n += k
		}
	}
	return n
}

// BenchmarkPeerUID measures the admission checks, the checkin endpoint's
// once per rsync connection, against what the connection itself costs: a
// loopback connect and accept, reported as baseline-ns/op.
func BenchmarkPeerUID(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	connect := func() (net.Conn, net.Conn) {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		server, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		return client, server
	}
	const baseRuns = 200
	start := time.Now()
	for range baseRuns {
		c, s := connect()
		c.Close()
		s.Close()
	}
	base := time.Since(start) / baseRuns
	client, server := connect()
	defer client.Close()
	defer server.Close()
	for _, bc := range []struct {
		name  string
		admit func(net.Conn) error
	}{
		{"sameUser", sameUser},
		{"rsyncAdmitter", func(c net.Conn) error { return newRsyncAdmitter().admit(c, true) }},
		{"restoreAdmit", func(c net.Conn) error { return restoreAdmit(c, false) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if err := bc.admit(server); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(base.Nanoseconds()), "baseline-ns/op")
		})
	}
}
