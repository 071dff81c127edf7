package sshserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/internal/testlog"
	gossh "golang.org/x/crypto/ssh"

	"github.com/turku-backup/turku-storage/internal/testclock"
)

const (
	testUser = "turku-ping"
	uuidA    = "11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	uuidB    = "22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	uuidV    = "33333333-cccc-4ccc-8ccc-cccccccccccc"
)

func machineInfo(unit string, s gossh.Signer) apiclient.MachineInfo {
	return apiclient.MachineInfo{UnitName: unit, SSHPublicKey: AuthorizedKey(s) + " " + unit}
}

// fakePuller records checkins and runs pull (nil: succeed at once).
type fakePuller struct {
	mu   sync.Mutex
	reqs []PullRequest
	pull func(ctx context.Context, req PullRequest) error
}

func (p *fakePuller) Pull(ctx context.Context, req PullRequest) error {
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	if p.pull == nil {
		return nil
	}
	return p.pull(ctx, req)
}

func (p *fakePuller) machines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.reqs {
		out = append(out, r.Machine)
	}
	return out
}

// testServer is a Server serving on loopback with machines A and V.
type testServer struct {
	*Server
	hostKey gossh.Signer
	keys    map[string]gossh.Signer // by UUID
	puller  *fakePuller
	addr    string
	serve   chan error
}

func startServer(t *testing.T, tweak func(*Options)) *testServer {
	t.Helper()
	ts := &testServer{
		hostKey: agenttest.NewSigner(t),
		keys:    map[string]gossh.Signer{uuidA: agenttest.NewSigner(t), uuidV: agenttest.NewSigner(t)},
		puller:  &fakePuller{},
		serve:   make(chan error, 1),
	}
	opts := Options{
		HostSigners: []gossh.Signer{ts.hostKey},
		User:        testUser,
		StorageName: "primary",
		Puller:      ts.puller,
		Machines: map[string]apiclient.MachineInfo{
			uuidA: machineInfo("web1", ts.keys[uuidA]),
			uuidV: machineInfo("victim", ts.keys[uuidV]),
		},
		Logger: testlog.New(t),
	}
	if tweak != nil {
		tweak(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	srv.forwardWait = 100 * time.Millisecond
	// The 5 s defaults are for agents on real networks; a test client that
	// keeps its connection after the session (Go's, unlike OpenSSH) would
	// wait them out. closeGrace only bounds a goodbye that is sent at once.
	srv.linger = 500 * time.Millisecond
	srv.closeGrace = 2 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { ts.serve <- srv.Serve(ctx, ln) }()
	ts.addr = ln.Addr().String()
	t.Cleanup(func() {
		cancel()
		if err := <-ts.serve; err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func (ts *testServer) clientConfig(user string, auth ...gossh.AuthMethod) *gossh.ClientConfig {
	return &gossh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(ts.hostKey.PublicKey()),
		Timeout:         10 * time.Second,
	}
}

// dial connects as machine uuid (or with signer, if uuid is not a machine).
func (ts *testServer) dial(t *testing.T, signer gossh.Signer) *gossh.Client {
	t.Helper()
	c, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(testUser, gossh.PublicKeys(signer)))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// forwardRequest asks the server for -R bind:port.
func forwardRequest(c *gossh.Client, bind string, port uint32) (bool, error) {
	ok, _, err := c.SendRequest("tcpip-forward", true, gossh.Marshal(&tcpipForwardRequest{BindAddr: bind, BindPort: port}))
	return ok, err
}

// serveForwards answers the server's forwarded-tcpip channels like an
// agent's rsync daemon would: it greets with tag, then echoes until EOF.
func serveForwards(t *testing.T, c *gossh.Client, tag string) {
	t.Helper()
	incoming := c.HandleChannelOpen("forwarded-tcpip")
	var wg sync.WaitGroup
	t.Cleanup(func() {
		c.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for nc := range incoming {
			ch, reqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				go gossh.DiscardRequests(reqs)
				fmt.Fprintf(ch, "%s\n", tag)
				io.Copy(ch, ch)
				ch.CloseWrite()
				ch.Close()
			}()
		}
	}()
}

// rsyncLike is what a Puller does with RsyncAddr in these tests: read the
// daemon's greeting, send a line, half-close, and read the echo. It does
// so from a child process, as the engine's rsync and the operator's do:
// a tunnel endpoint admits no connection of serve's own process.
func rsyncLike(ctx context.Context, addr string) (string, error) {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRsyncLikeChild$")
	cmd.Env = append(os.Environ(), rsyncLikeEnv+"="+addr)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	first, rest, _ := strings.Cut(string(out), "\n")
	greeting, ok := strings.CutPrefix(first, "greeting: ")
	if !ok || strings.TrimSpace(rest) != "echo: ping" {
		return "", fmt.Errorf("child said %q", out)
	}
	return greeting, nil
}

// startRsyncLike is rsyncLike in two steps: it returns the greeting once
// the child read it, and finish sends the line and checks the echo.
func startRsyncLike(t *testing.T, addr string) (greeting string, finish func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRsyncLikeChild$")
	cmd.Env = append(os.Environ(), rsyncLikeEnv+"="+addr, rsyncLikeWaitEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, stdout := agenttest.StartPiped(t, cmd)
	done := false
	t.Cleanup(func() {
		if !done {
			stdin.Close()
			cmd.Wait()
		}
		cancel()
	})
	br := bufio.NewReader(stdout)
	line, _ := br.ReadString('\n')
	greeting, _ = strings.CutPrefix(strings.TrimSpace(line), "greeting: ")
	return greeting, func() error {
		done = true
		io.WriteString(stdin, "go\n")
		stdin.Close()
		rest, _ := io.ReadAll(br)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		if got := strings.TrimSpace(string(rest)); got != "echo: ping" {
			return fmt.Errorf("child said %q", got)
		}
		return nil
	}
}

// rsyncLikeEnv names the address TestRsyncLikeChild connects to; with
// rsyncLikeWaitEnv set, it waits for a line on stdin after the greeting.
const (
	rsyncLikeEnv     = "TURKU_TEST_RSYNC_LIKE_ADDR"
	rsyncLikeWaitEnv = "TURKU_TEST_RSYNC_LIKE_WAIT"
)

// TestRsyncLikeChild is rsyncLike's child process, not a test of its own.
func TestRsyncLikeChild(t *testing.T) {
	addr := os.Getenv(rsyncLikeEnv)
	if addr == "" {
		t.Skip("rsyncLike's child process")
	}
	var d net.Dialer
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err == nil {
		err = rsyncLikeOn(c, os.Getenv(rsyncLikeWaitEnv) != "")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// rsyncLikeOn runs rsyncLike's exchange on c, printing the greeting and
// then the echo; with wait, it waits for a line on stdin in between.
func rsyncLikeOn(c net.Conn, wait bool) error {
	defer c.Close()
	br := bufio.NewReader(c)
	greeting, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	fmt.Printf("greeting: %s\n", strings.TrimSpace(greeting))
	if wait {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
	}
	if _, err := io.WriteString(c, "ping"); err != nil {
		return err
	}
	c.(*net.TCPConn).CloseWrite()
	echo, err := io.ReadAll(br)
	if err != nil {
		return err
	}
	if string(echo) != "ping" {
		return fmt.Errorf("echo %q, want ping", echo)
	}
	fmt.Printf("echo: %s\n", echo)
	return nil
}

// runSession execs cmd, writes stdin, keeps stdin open like the agent, and
// returns the exit status (-1 if none) and stderr.
func runSession(t *testing.T, c *gossh.Client, stdin string) (int, string) {
	t.Helper()
	return runSessionEOF(t, c, stdin, false)
}

// newSession opens a session on c, closed when the test ends.
func newSession(t *testing.T, c *gossh.Client) *gossh.Session {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// startPing runs turku-ping-remote on sess, as the agent's ssh does, with
// its stderr going to stderr (nil: discarded), and returns its stdin.
func startPing(t *testing.T, sess *gossh.Session, stderr io.Writer) io.WriteCloser {
	t.Helper()
	sess.Stderr = stderr
	in, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("turku-ping-remote"); err != nil {
		t.Fatalf("exec: %v", err)
	}
	return in
}

// runSessionEOF is runSession, closing stdin after writing if eof.
func runSessionEOF(t *testing.T, c *gossh.Client, stdin string, eof bool) (int, string) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	defer sess.Close()
	var stderr agenttest.Output
	in := startPing(t, sess, &stderr)
	if _, err := io.WriteString(in, stdin); err != nil {
		t.Fatalf("write request: %v", err)
	}
	if eof {
		in.Close()
	}
	return exitCode(t, sess.Wait()), stderr.String()
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *gossh.ExitError
	var missing *gossh.ExitMissingError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitStatus()
	case errors.As(err, &missing):
		return -1
	}
	t.Fatalf("session: %v", err)
	return -2
}

// wantCheckin asks for a reverse forward of port over c and runs a
// checkin on it, failing the test, named by what, unless it succeeds.
func wantCheckin(t *testing.T, c *gossh.Client, port int, what string) {
	t.Helper()
	wantSession(t, c, port, checkinRequest(port), 0, "", what)
}

// wantRefusal is wantCheckin for a request the server must refuse: exit 1
// with reason on stderr.
func wantRefusal(t *testing.T, c *gossh.Client, port int, request, reason, what string) {
	t.Helper()
	wantSession(t, c, port, request, 1, reason, what)
}

func wantSession(t *testing.T, c *gossh.Client, port int, request string, wantCode int, reason, what string) {
	t.Helper()
	if ok, err := forwardRequest(c, "localhost", uint32(port)); !ok || err != nil {
		t.Fatalf("%s: tcpip-forward: %v %v", what, ok, err)
	}
	if code, stderr := runSession(t, c, request); code != wantCode || !strings.Contains(stderr, reason) {
		t.Errorf("%s: exit %d, stderr %q; want %d and %q", what, code, stderr, wantCode, reason)
	}
}

// testAdmission is the admission control of a server on clock with the
// default limits and penalties as edit (nil: none) changes them; logger
// nil: no log.
func testAdmission(clock *testclock.Clock, logger *slog.Logger, edit func(*Options)) *admission {
	o := Options{Now: clock.Now, MaxStartups: DefaultMaxStartups,
		PerSourceMaxStartups: DefaultPerSourceMaxStartups, Penalties: DefaultPenalties}
	if edit != nil {
		edit(&o)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return newAdmission(&Server{opts: o, logger: logger})
}

// refuseKeys admits src n times, ending each connection with a refused
// key; it fails the test if src is refused first.
func refuseKeys(t *testing.T, a *admission, src netip.Prefix, n int) {
	t.Helper()
	for range n {
		if ok, why := a.admit(src); !ok {
			t.Fatalf("%s refused (%s) before its penalty", src, why)
		}
		a.release(src, outcomeAuthFail)
	}
}

func checkinRequest(port int) string {
	return fmt.Sprintf(`{"verbose": true, "action": "checkin", "port": %d, "sources": {"etc": {"username": "u", "password": "p"}}}`+"\n.\n", port)
}

// socketPair returns both ends of a loopback TCP connection.
func socketPair() (net.Conn, net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	out, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	in, err := ln.Accept()
	if err != nil {
		out.Close()
		return nil, nil, err
	}
	return out, in, nil
}

// blockPull has ts's puller close the first channel when a pull starts and
// hold the pull until its context ends, then send the context's cause on
// the second.
func blockPull(ts *testServer) (pulling <-chan struct{}, cause <-chan error) {
	p := make(chan struct{})
	c := make(chan error, 1)
	ts.puller.pull = func(ctx context.Context, req PullRequest) error {
		close(p)
		<-ctx.Done()
		c <- context.Cause(ctx)
		return ctx.Err()
	}
	return p, c
}

// admit is admitOrWait for a connection that never waits: the tests drive
// the drop rules through it.
func (a *admission) admit(src netip.Prefix) (bool, string) {
	ok, why, _ := a.admitOrWait(src, false)
	return ok, why
}
