package sshserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

// panicOnce is a slog.Handler that panics the first time a record with
// message msg is logged, standing in for a bug in code that runs there.
// Every record goes on to the embedded Handler; recovered is closed once a
// "panic recovered" record has been written.
type panicOnce struct {
	slog.Handler
	*panicState
}

type panicState struct {
	msg       string
	armed     atomic.Bool
	once      sync.Once
	recovered chan struct{}
}

func newPanicOnce(h slog.Handler, msg string) panicOnce {
	p := panicOnce{h, &panicState{msg: msg, recovered: make(chan struct{})}}
	p.armed.Store(true)
	return p
}

func (h panicOnce) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg && h.armed.CompareAndSwap(true, false) {
		panic("injected by test at " + h.msg)
	}
	err := h.Handler.Handle(ctx, r)
	if strings.HasPrefix(r.Message, "panic recovered") {
		h.once.Do(func() { close(h.recovered) })
	}
	return err
}

func (h panicOnce) WithAttrs(as []slog.Attr) slog.Handler {
	return panicOnce{h.Handler.WithAttrs(as), h.panicState}
}

func (h panicOnce) WithGroup(name string) slog.Handler {
	return panicOnce{h.Handler.WithGroup(name), h.panicState}
}

// waitRecovered waits for the server to log the recovered panic.
func (h panicOnce) waitRecovered(t *testing.T) {
	t.Helper()
	select {
	case <-h.recovered:
	case <-time.After(10 * time.Second):
		t.Fatal("no panic recovered")
	}
}

// wantServesOn fails the test unless logs hold the recovered panic with
// its stack and machine V still checks in, on a new connection.
func wantServesOn(t *testing.T, ts *testServer, logs *agenttest.Output) {
	t.Helper()
	if s := logs.String(); !strings.Contains(s, "injected by test") || !strings.Contains(s, "goroutine ") {
		t.Errorf("no panic with stack in the log: %s", s)
	}
	wantCheckin(t, ts.dial(t, ts.keys[uuidV]), 50001, "checkin after the panic")
}

// TestPullerPanic: a panic in one checkin fails that session, with a
// message to its agent and the stack in our log, and the server goes on
// serving other agents.
func TestPullerPanic(t *testing.T) {
	var logs agenttest.Output
	ts := startServer(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	ts.puller.pull = func(_ context.Context, req PullRequest) error {
		if req.Machine == uuidA {
			panic("injected by test")
		}
		return nil
	}
	wantRefusal(t, ts.dial(t, ts.keys[uuidA]), 50000, checkinRequest(50000), "ERROR: Storage unit internal error", "checkin that panicked")
	wantServesOn(t, ts, &logs)
}

// TestSessionPanic: a panic in the session handler outside the Puller
// (here: while logging the session's start) ends that session only.
func TestSessionPanic(t *testing.T) {
	var logs agenttest.Output
	h := newPanicOnce(slog.NewTextHandler(&logs, nil), "session started")
	ts := startServer(t, func(o *Options) { o.Logger = slog.New(h) })
	c := ts.dial(t, ts.keys[uuidA])
	if ok, err := forwardRequest(c, "localhost", 50000); !ok || err != nil {
		t.Fatalf("tcpip-forward: %v %v", ok, err)
	}
	// The panic comes as the session starts, so the channel may be gone
	// before the request is written: a write error is expected then.
	sess := newSession(t, c)
	in := startPing(t, sess, nil)
	_, _ = io.WriteString(in, checkinRequest(50000))
	if code := exitCode(t, sess.Wait()); code == 0 {
		t.Errorf("session that panicked exited 0")
	}
	h.waitRecovered(t)
	wantServesOn(t, ts, &logs)
}

// TestConnectionPanic: a panic during the SSH handshake (here: while
// logging a failed authentication attempt) drops that connection only.
func TestConnectionPanic(t *testing.T) {
	var logs agenttest.Output
	h := newPanicOnce(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}), "authentication attempt failed")
	ts := startServer(t, func(o *Options) { o.Logger = slog.New(h) })
	_, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(testUser, gossh.PublicKeys(agenttest.NewSigner(t))))
	if err == nil {
		t.Fatal("unknown key accepted")
	}
	h.waitRecovered(t)
	wantServesOn(t, ts, &logs)
}

// TestRequestAndChannelPanic: a panic in a global request's handler
// answers that request false and the connection serves on; a panic in a
// channel's handler ends that connection only. Both go through the one
// wrapper of every handler (request, channel).
func TestRequestAndChannelPanic(t *testing.T) {
	for _, tt := range []struct {
		name, at, recovered string
		// trigger makes the handler run on c and fails unless it is
		// refused; after checks the connection then.
		trigger func(c *gossh.Client) error
		after   func(t *testing.T, ts *testServer, c *gossh.Client)
	}{
		{"global request", "global request refused", "panic recovered in global request",
			func(c *gossh.Client) error {
				if ok, _, err := c.SendRequest("example@turku.invalid", true, nil); ok || err != nil {
					return fmt.Errorf("answered %v, %v; want false", ok, err)
				}
				return nil
			},
			func(t *testing.T, _ *testServer, c *gossh.Client) {
				wantCheckin(t, c, 50001, "checkin on the same connection after the panic")
			}},
		{"channel", "forwarding channel refused", "panic recovered in channel handler",
			func(c *gossh.Client) error {
				if _, err := c.Dial("tcp", "127.0.0.1:22"); err == nil {
					return errors.New("direct-tcpip accepted")
				}
				return nil
			},
			func(t *testing.T, ts *testServer, c *gossh.Client) {
				// That connection is ended; the server serves others.
				if err := c.Wait(); err == nil {
					t.Error("connection ended without error")
				}
				wantCheckin(t, ts.dial(t, ts.keys[uuidV]), 50001, "checkin after the panic")
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs agenttest.Output
			h := newPanicOnce(slog.NewTextHandler(&logs, nil), tt.at)
			ts := startServer(t, func(o *Options) { o.Logger = slog.New(h) })
			c := ts.dial(t, ts.keys[uuidV])
			if err := tt.trigger(c); err != nil {
				t.Fatal(err)
			}
			h.waitRecovered(t)
			if s := logs.String(); !strings.Contains(s, tt.recovered) || !strings.Contains(s, "goroutine ") {
				t.Errorf("no panic with stack in the log: %s", s)
			}
			tt.after(t, ts, c)
		})
	}
}
