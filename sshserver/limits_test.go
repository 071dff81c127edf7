package sshserver

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

// readKexInit connects without SSH, sends a version line and returns the
// server's KEXINIT name-lists (RFC 4253 §7.1), in order: kex, host key,
// ciphers c2s, ciphers s2c, MACs c2s, MACs s2c, compression c2s, s2c,
// languages c2s, s2c.
func readKexInit(t *testing.T, addr string) [][]string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("version line: %v", err)
		}
		if strings.HasPrefix(line, "SSH-2.0-") {
			break
		}
	}
	if _, err := io.WriteString(c, "SSH-2.0-probe\r\n"); err != nil {
		t.Fatal(err)
	}
	var hdr [5]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatal(err)
	}
	length, padding := binary.BigEndian.Uint32(hdr[:4]), int(hdr[4])
	if length > 35000 {
		t.Fatalf("packet length %d", length)
	}
	body := make([]byte, length-1)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	payload := body[:len(body)-padding]
	const msgKexInit = 20
	if payload[0] != msgKexInit {
		t.Fatalf("first packet is message %d, want KEXINIT", payload[0])
	}
	rest := payload[1+16:] // message number, cookie
	var lists [][]string
	for range 10 {
		n := binary.BigEndian.Uint32(rest)
		lists = append(lists, strings.Split(string(rest[4:4+n]), ","))
		rest = rest[4+n:]
	}
	return lists
}

// TestAlgorithmsOffered pins what the server offers, strict KEX (Terrapin,
// CVE-2023-48795) included.
func TestAlgorithmsOffered(t *testing.T) {
	ts := startServer(t, nil)
	lists := readKexInit(t, ts.addr)
	if !slices.Contains(lists[0], "kex-strict-s-v00@openssh.com") {
		t.Errorf("kex list %q lacks kex-strict-s-v00@openssh.com", lists[0])
	}
	var kex []string
	for _, k := range lists[0] {
		if !strings.HasPrefix(k, "kex-strict-") && !strings.HasPrefix(k, "ext-info-") {
			kex = append(kex, k)
		}
	}
	wantKex := []string{"mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org",
		"ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521"}
	if diff := cmp.Diff(wantKex, kex); diff != "" {
		t.Errorf("kex (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ssh-ed25519"}, lists[1]); diff != "" {
		t.Errorf("host key algorithms (-want +got):\n%s", diff)
	}
	wantCiphers := []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}
	for i := 2; i <= 3; i++ {
		if diff := cmp.Diff(wantCiphers, lists[i]); diff != "" {
			t.Errorf("ciphers (-want +got):\n%s", diff)
		}
	}
	for i := 4; i <= 5; i++ {
		for _, m := range lists[i] {
			if !strings.HasSuffix(m, "-etm@openssh.com") {
				t.Errorf("MAC %s offered", m)
			}
		}
	}
}

func TestLoginGraceTime(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.LoginGraceTime = 200 * time.Millisecond })
	t.Run("silent before the handshake", func(t *testing.T) {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Returns once the server gives up on us.
		got, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(got), "SSH-2.0-TurkuStorage") {
			t.Errorf("got %q before the close", got)
		}
	})
	t.Run("authenticated, no command", func(t *testing.T) {
		c := ts.dial(t, ts.keys[uuidA])
		if err := c.Wait(); err == nil {
			t.Log("closed")
		}
	})
	t.Run("command, no request", func(t *testing.T) {
		wantRefusal(t, ts.dial(t, ts.keys[uuidA]), 51234, `{"port": 51234`, // never finished
			"ERROR: Session ended: login grace time exceeded", "request never finished")
	})
}

func TestMaxStartups(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxStartups = MaxStartups{Start: 1, Rate: 100, Full: 1} })
	first, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if line, err := bufio.NewReader(first).ReadString('\n'); err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
		t.Fatalf("first connection: %q %v", line, err)
	}
	second, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if got, _ := io.ReadAll(second); len(got) != 0 {
		t.Errorf("second unauthenticated connection got %q, want dropped", got)
	}
}

func TestMaxAuthTries(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		o.MaxAuthTries = 3
		o.Penalties.Min = time.Hour // not what this test is about
	})
	// Key queries count too: a scanner offering keys one after another is
	// cut off at MaxAuthTries, even before the one that would do. (x/crypto
	// alone gives failed queries a budget of their own, so the fourth key
	// would get in.)
	t.Run("key queries", func(t *testing.T) {
		signers := []gossh.Signer{agenttest.NewSigner(t), agenttest.NewSigner(t), agenttest.NewSigner(t), ts.keys[uuidA]}
		c, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(testUser, gossh.PublicKeys(signers...)))
		if err == nil {
			c.Close()
			t.Fatal("the fourth key offered got in, want the connection cut after three")
		}
		// The same key first is fine.
		c, err = gossh.Dial("tcp", ts.addr, ts.clientConfig(testUser, gossh.PublicKeys(ts.keys[uuidA], agenttest.NewSigner(t))))
		if err != nil {
			t.Fatalf("machine key first: %v", err)
		}
		c.Close()
	})
}

// TestMaxSessions: a session that has not stated its request holds one
// of MaxSessions, and one more is refused; a checkin, once stated, is
// bounded by the fleet instead (one per machine), so it holds none while
// it runs or waits for a backup slot.
func TestMaxSessions(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		o.MaxSessions = 1
		o.SessionRequestTimeout = time.Hour
		o.sessionWait = 100 * time.Millisecond // a session waits this long for a slot
	})
	pulling := make(chan struct{})
	release := make(chan struct{})
	ts.puller.pull = func(ctx context.Context, req PullRequest) error {
		if req.Machine == uuidA {
			close(pulling)
			<-release
		}
		return nil
	}
	a := ts.dial(t, ts.keys[uuidA])
	forwardRequest(a, "localhost", 51234)
	sess := newSession(t, a)
	in := startPing(t, sess, nil)
	// A's session has stated nothing yet: it holds the one slot.
	v := ts.dial(t, ts.keys[uuidV])
	if _, err := v.NewSession(); err == nil || !strings.Contains(err.Error(), "too many sessions") {
		t.Errorf("second concurrent session: %v, want too many sessions", err)
	}
	v.Wait() // and the connection is dropped

	io.WriteString(in, checkinRequest(51234))
	<-pulling
	wantCheckin(t, ts.dial(t, ts.keys[uuidV]), 51235, "session beside a running checkin")
	close(release)
	if code := exitCode(t, sess.Wait()); code != 0 {
		t.Errorf("first session exit %d", code)
	}
}

// freezer is a TCP proxy that can stop carrying bytes, as a dead network
// would, while keeping both connections open.
type freezer struct {
	ln     net.Listener
	target string
	frozen chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, frozen: make(chan struct{})}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		f.wg.Wait()
	})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			f.wg.Add(2)
			go f.pipe(in, out)
			go f.pipe(out, in)
		}
	}()
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-f.frozen:
			// Swallow everything from now on.
			io.Copy(io.Discard, src)
			return
		default:
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) freeze() { f.once.Do(func() { close(f.frozen) }) }

// TestIdleTimeout: an agent whose network dies mid-backup is dropped after
// IdleTimeout, and the backup is cancelled; a live one survives any quiet
// spell thanks to keepalives.
func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.IdleTimeout = 1500 * time.Millisecond })
	proxy := newFreezer(t, ts.addr)
	pulling, ended := blockPull(ts)
	c, err := gossh.Dial("tcp", proxy.ln.Addr().String(), ts.clientConfig(testUser, gossh.PublicKeys(ts.keys[uuidA])))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	forwardRequest(c, "localhost", 51234)
	in := startPing(t, newSession(t, c), nil)
	io.WriteString(in, checkinRequest(51234))
	<-pulling
	proxy.freeze()
	if cause := <-ended; !errors.Is(cause, errConnClosed) {
		t.Errorf("backup ended with %v, want connection closed", cause)
	}
}
