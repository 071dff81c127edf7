package sshserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/turku-backup/turku-storage/agentproto"
	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

func TestSessionProtocol(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		forward    uint32 // 0: none
		stdin      string
		eof        bool // close stdin after writing it
		pull       func(ctx context.Context, req PullRequest) error
		wantCode   int
		wantStderr string // regexp
		wantPulls  int
	}{
		{
			name:    "checkin",
			forward: 51234,
			stdin:   checkinRequest(51234),
			pull: func(ctx context.Context, req PullRequest) error {
				greeting, err := rsyncLike(ctx, req.RsyncAddr)
				if err != nil {
					return err
				}
				req.Log.Infof("Begin: web1 etc (%s)", greeting)
				return nil
			},
			wantCode:   0,
			wantStderr: `^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} primary\] INFO: Begin: web1 etc \(agent-A\)\n$`,
			wantPulls:  1,
		},
		{
			name:       "default action, shell-less exec, no verbose",
			forward:    51234,
			stdin:      `{"port": 51234}` + "\n.\n",
			wantCode:   0,
			wantStderr: `^$`,
			wantPulls:  1,
		},
		{
			name:       "malformed JSON",
			forward:    51234,
			stdin:      "{not json\n.\n",
			wantCode:   1,
			wantStderr: `ERROR: Invalid request: malformed request JSON`,
		},
		{
			name:       "EOF before the dot",
			forward:    51234,
			stdin:      "",
			eof:        true,
			wantCode:   1,
			wantStderr: `ERROR: Invalid request: empty request`,
		},
		{
			name:       "port not forwarded",
			forward:    50000,
			stdin:      checkinRequest(51234),
			wantCode:   1,
			wantStderr: `ERROR: Port 51234 is not forwarded on this connection`,
		},
		{
			name:       "no forward at all",
			stdin:      checkinRequest(51234),
			wantCode:   1,
			wantStderr: `ERROR: Port 51234 is not forwarded`,
		},
		{
			name:    "pull fails",
			forward: 51234,
			stdin:   checkinRequest(51234),
			pull: func(ctx context.Context, req PullRequest) error {
				return errors.New("/srv/secret/path: disk full")
			},
			wantCode:   1,
			wantStderr: `^$`, // the Puller speaks to the agent; internals stay in our log
			wantPulls:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, nil)
			ts.puller.pull = tt.pull
			c := ts.dial(t, ts.keys[uuidA])
			serveForwards(t, c, "agent-A")
			if tt.forward != 0 {
				if ok, err := forwardRequest(c, "localhost", tt.forward); !ok || err != nil {
					t.Fatalf("tcpip-forward: %v %v", ok, err)
				}
			}
			code, stderr := runSessionEOF(t, c, tt.stdin, tt.eof)
			if code != tt.wantCode {
				t.Errorf("got exit %d, want %d", code, tt.wantCode)
			}
			if !regexp.MustCompile(tt.wantStderr).MatchString(stderr) {
				t.Errorf("stderr %q does not match %q", stderr, tt.wantStderr)
			}
			if got := len(ts.puller.machines()); got != tt.wantPulls {
				t.Errorf("got %d pulls, want %d", got, tt.wantPulls)
			}
		})
	}
}

func TestCheckinPullRequest(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := ts.dial(t, ts.keys[uuidA])
	if ok, err := forwardRequest(c, "localhost", 51234); !ok || err != nil {
		t.Fatalf("tcpip-forward: %v %v", ok, err)
	}
	code, stderr := runSession(t, c, checkinRequest(51234))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ts.puller.mu.Lock()
	defer ts.puller.mu.Unlock()
	req := ts.puller.reqs[0]
	if req.Machine != uuidA {
		t.Errorf("machine %q, want %q", req.Machine, uuidA)
	}
	want := map[string]agentproto.Credential{"etc": {Username: "u", Password: "p"}}
	if diff := cmp.Diff(want, req.Credentials); diff != "" {
		t.Errorf("credentials (-want +got):\n%s", diff)
	}
	host, port, err := net.SplitHostPort(req.RsyncAddr)
	if err != nil || host != "127.0.0.1" || port == "51234" {
		t.Errorf("RsyncAddr %q: want a private 127.0.0.1 port, not the agent's", req.RsyncAddr)
	}
}

// restoreSession starts a restore and returns the port the server reported,
// the stdin to close and a wait function for exit status and stderr.
func restoreSession(t *testing.T, c *gossh.Client, port int) (int, io.WriteCloser, func() (int, string)) {
	t.Helper()
	sess := newSession(t, c)
	pr, pw := io.Pipe()
	in := startPing(t, sess, pw)
	fmt.Fprintf(in, `{"verbose": true, "action": "restore", "port": %d}`+"\n.\n", port)
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	active := regexp.MustCompile(`INFO: Restore mode active on port (\d+)\.  Good luck\.$`)
	var got int
	for line := range lines {
		if m := active.FindStringSubmatch(line); m != nil {
			got, _ = strconv.Atoi(m[1])
			break
		}
		t.Fatalf("unexpected line before restore: %q", line)
	}
	if got == 0 {
		t.Fatal("no restore line")
	}
	wait := func() (int, string) {
		var rest []string
		done := make(chan struct{})
		go func() {
			for line := range lines {
				rest = append(rest, line)
			}
			close(done)
		}()
		code := exitCode(t, sess.Wait())
		pw.Close()
		<-done
		return code, strings.Join(rest, "\n")
	}
	return got, in, wait
}

// startRestore connects agent A, forwards a free PORT and starts a restore
// session; it returns the port the server listens on and the session.
func startRestore(t *testing.T, ts *testServer) (int, io.WriteCloser, func() (int, string)) {
	t.Helper()
	c := ts.dial(t, ts.keys[uuidA])
	serveForwards(t, c, "agent-A")
	// The agent's random PORT, free a moment ago.
	port := agenttest.FreePort(t, "127.0.0.1")
	if ok, err := forwardRequest(c, "localhost", uint32(port)); !ok || err != nil {
		t.Fatalf("tcpip-forward: %v %v", ok, err)
	}
	got, stdin, wait := restoreSession(t, c, port)
	if got != port {
		t.Fatalf("restore on %d, asked %d", got, port)
	}
	return got, stdin, wait
}

func TestRestore(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	got, stdin, wait := startRestore(t, ts)
	greeting, err := rsyncLike(t.Context(), net.JoinHostPort("127.0.0.1", strconv.Itoa(got)))
	if err != nil {
		t.Fatalf("operator rsync: %v", err)
	}
	if greeting != "agent-A" {
		t.Errorf("reached %q, want agent-A", greeting)
	}
	stdin.Close() // the agent ends restore mode
	code, rest := wait()
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if !strings.HasSuffix(rest, "INFO: Restore mode finished") {
		t.Errorf("stderr after restore %q, want Restore mode finished", rest)
	}
	if len(ts.puller.machines()) != 0 {
		t.Errorf("restore ran a checkin")
	}
}

// TestRestorePortTaken: the agent prints restore instructions naming the
// port it asked for; when that port is taken on the storage unit the
// session fails and says so, instead of opening another port an operator
// would never be told about while the asked one reaches a squatter.
func TestRestorePortTaken(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	c := ts.dial(t, ts.keys[uuidA])
	serveForwards(t, c, "agent-A")
	taken, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(agenttest.FreePort(t, "127.0.0.1"))))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	if ok, err := forwardRequest(c, "localhost", uint32(port)); !ok || err != nil {
		t.Fatalf("tcpip-forward: %v %v", ok, err)
	}
	code, stderr := runSession(t, c, fmt.Sprintf(`{"action": "restore", "port": %d}`+"\n.\n", port))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := fmt.Sprintf("ERROR: Restore port %d is in use on the storage unit", port)
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	if strings.Contains(stderr, "Restore mode active") {
		t.Errorf("restore started on another port: %q", stderr)
	}
}

// TestRestorePrivilegedPort: a hostile agent asking for restore port 25
// must not make a root storage unit listen there: the forward is refused
// (only ports 1024-65535), and so is a restore on a port never forwarded.
// tunnel.Restore refuses ports below 1024 as well (tunnel tests).
func TestRestorePrivilegedPort(t *testing.T) {
	wantRestoreRefused(t, startServer(t, nil), 25)
}

// wantRestoreRefused fails the test unless an agent's forward of port is
// refused and so is its restore on port, which then never starts.
func wantRestoreRefused(t *testing.T, ts *testServer, port int) {
	t.Helper()
	c := ts.dial(t, ts.keys[uuidA])
	serveForwards(t, c, "agent-A")
	if ok, err := forwardRequest(c, "localhost", uint32(port)); ok || err != nil {
		t.Errorf("tcpip-forward for port %d: got %v %v, want refused", port, ok, err)
	}
	// The agent closes stdin at once: a restore that did start ends at
	// once too, so the test is bounded whatever the server does.
	code, stderr := runSessionEOF(t, c, fmt.Sprintf(`{"action": "restore", "port": %d}`+"\n.\n", port), true)
	if code != 1 {
		t.Errorf("restore on port %d: exit %d, want 1", port, code)
	}
	if strings.Contains(stderr, "Restore mode active") {
		t.Errorf("restore started on port %d: %q", port, stderr)
	}
}

// TestRevocationEndsSession: a refresh that drops the machine, or lists it
// with a new key, ends the old key's running session; the agent is told
// why, and the old key no longer logs in.
func TestRevocationEndsSession(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		refresh func(t *testing.T, ts *testServer) map[string]apiclient.MachineInfo
	}{
		{"machine dropped", func(t *testing.T, ts *testServer) map[string]apiclient.MachineInfo {
			return map[string]apiclient.MachineInfo{uuidV: machineInfo("victim", ts.keys[uuidV])}
		}},
		{"key rotated", func(t *testing.T, ts *testServer) map[string]apiclient.MachineInfo {
			return map[string]apiclient.MachineInfo{uuidA: machineInfo("web1", agenttest.NewSigner(t))}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, nil)
			pulling, causes := blockPull(ts)
			machines := tt.refresh(t, ts)
			go func() {
				<-pulling
				ts.SetMachines(machines)
			}()
			wantRefusal(t, ts.dial(t, ts.keys[uuidA]), 51234, checkinRequest(51234),
				"ERROR: Session ended: machine revoked", "checkin during the refresh")
			if cause := <-causes; !errors.Is(cause, ErrMachineRevoked) {
				t.Errorf("Pull's context ended with %v, want ErrMachineRevoked", cause)
			}
			if c, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(testUser, gossh.PublicKeys(ts.keys[uuidA]))); err == nil {
				c.Close()
				t.Error("revoked key still logs in")
			}
		})
	}
}

// TestRefreshKeepsSession: a refresh that keeps the machine changes nothing.
func TestRefreshKeepsSession(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ts.puller.pull = func(ctx context.Context, req PullRequest) error {
		ts.SetMachines(map[string]apiclient.MachineInfo{uuidA: machineInfo("web1-renamed", ts.keys[uuidA])})
		return context.Cause(ctx) // nil unless the refresh cancelled us
	}
	wantCheckin(t, ts.dial(t, ts.keys[uuidA]), 51234, "checkin")
}

// TestShutdownCancelsSessions: when Shutdown's context ends, running
// sessions are cancelled with its cause, which the agent reads.
func TestShutdownCancelsSessions(t *testing.T) {
	t.Parallel()
	deadlinePassed := fmt.Errorf("%w deadline passed", ErrShutdown)
	for _, tc := range []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		want    string
		wantErr error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, "ERROR: Session ended: shutdown\n", context.Canceled},
		{"deadline with cause", func() (context.Context, context.CancelFunc) {
			return context.WithTimeoutCause(context.Background(), 0, deadlinePassed)
		}, "ERROR: Session ended: shutdown deadline passed\n", context.DeadlineExceeded},
		{"other cause", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancelCause(context.Background())
			cancel(errors.New("second signal"))
			return ctx, func() {}
		}, "ERROR: Session ended: shutdown: second signal\n", context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, nil)
			pulling, _ := blockPull(ts)
			c := ts.dial(t, ts.keys[uuidA])
			forwardRequest(c, "localhost", 51234)
			shutdown := make(chan error, 1)
			go func() {
				<-pulling
				ctx, cancel := tc.ctx() // the deadline has passed: cancel the sessions now
				defer cancel()
				shutdown <- ts.Shutdown(ctx)
			}()
			code, stderr := runSession(t, c, checkinRequest(51234))
			if code != 1 || !strings.HasSuffix(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
			if err := <-shutdown; !errors.Is(err, tc.wantErr) {
				t.Errorf("Shutdown: %v, want %v", err, tc.wantErr)
			}
			if _, err := net.Dial("tcp", ts.addr); err == nil {
				t.Error("still accepting after Shutdown")
			}
		})
	}
}

func TestShutdownWaitsForSessions(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	pulling := make(chan struct{})
	release := make(chan struct{})
	ts.puller.pull = func(ctx context.Context, req PullRequest) error {
		close(pulling)
		<-release
		return ctx.Err()
	}
	c := ts.dial(t, ts.keys[uuidA])
	forwardRequest(c, "localhost", 51234)
	shutdown := make(chan error, 1)
	go func() {
		<-pulling
		go func() { shutdown <- ts.Shutdown(context.Background()) }()
		// Shutdown must not end the running backup: it finishes normally.
		close(release)
	}()
	code, stderr := runSession(t, c, checkinRequest(51234))
	if code != 0 {
		t.Errorf("exit %d, stderr %q; want 0", code, stderr)
	}
	c.Close()
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestServeAfterShutdown(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ts.dial(t, ts.keys[uuidA]).Close() // Serve is running
	if err := ts.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-ts.serve; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v after Shutdown, want ErrServerClosed", err)
	}
	ts.serve <- nil // for the cleanup
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Serve(t.Context(), ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("second Serve: %v, want ErrServerClosed", err)
	}
}

// TestShutdownEndsIdleRestore: a restore session lasts until the operator
// ends it, so on shutdown it ends as soon as no transfer runs through it —
// but never cuts a transfer that is running.
func TestShutdownEndsIdleRestore(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	got, _, wait := startRestore(t, ts)

	// The operator's transfer is running when shutdown starts.
	greeting, finish := startRsyncLike(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(got)))
	if greeting != "agent-A" {
		t.Fatalf("greeting %q", greeting)
	}
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shutdown <- ts.Shutdown(ctx)
	}()
	<-ts.draining // Shutdown has begun
	// The transfer still completes through the draining restore session.
	if err := finish(); err != nil {
		t.Fatalf("transfer during shutdown: %v", err)
	}

	// Idle now: the session ends with the reason, and Shutdown returns
	// without waiting for its deadline.
	code, rest := wait()
	if code != 1 || !strings.Contains(rest, "INFO: Restore mode finished") || !strings.Contains(rest, "ERROR: Session ended: shutdown") {
		t.Errorf("exit %d, stderr %q; want 1, finished and shutdown", code, rest)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v, want nil (no deadline reached)", err)
	}
}

func TestAgentMessage(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cause error
		want  string
	}{
		{"declared", ErrMachineRevoked, "machine revoked"},
		{"wrapped declared", fmt.Errorf("refresh: %w", ErrMachineRevoked), "machine revoked"},
		{"undeclared", errors.New("open /var/lib/turku-storage/x: permission denied"), "internal error"},
		{"undeclared wrapping nothing declared", fmt.Errorf("dial 10.0.0.5:443: %w", errors.New("refused")), "internal error"},
		{"declared around undeclared", &agentError{fmt.Errorf("%w: %w", ErrShutdown, errors.New("second signal"))}, "shutdown: second signal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := agentMessage(tt.cause); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUndeclaredCauseNotShown: a session cut short by a cause not
// declared agent-visible tells the agent a generic message; the cause
// itself is in our log only.
func TestUndeclaredCauseNotShown(t *testing.T) {
	t.Parallel()
	var logs agenttest.Output
	ts := startServer(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	pulling, causes := blockPull(ts)
	c := ts.dial(t, ts.keys[uuidA])
	forwardRequest(c, "localhost", 51234)
	secret := errors.New("open /srv/secret/db.key: permission denied")
	go func() {
		<-pulling
		ts.mu.Lock()
		defer ts.mu.Unlock()
		for cn := range ts.conns {
			cn.cancel(secret)
		}
	}()
	code, stderr := runSession(t, c, checkinRequest(51234))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr, "ERROR: Session ended: internal error") || strings.Contains(stderr, "secret") {
		t.Errorf("stderr %q, want the generic message and not the cause", stderr)
	}
	if cause := <-causes; !errors.Is(cause, secret) {
		t.Errorf("Pull's context ended with %v, want the cause", cause)
	}
	// Logged before the agent is told.
	if !strings.Contains(logs.String(), "/srv/secret/db.key") {
		t.Errorf("the cause is not in our log:\n%s", logs.String())
	}
}
