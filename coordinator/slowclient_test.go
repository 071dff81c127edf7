package coordinator

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/internal/testcert"

	"github.com/turku-backup/turku-storage/internal/testclock"
)

// Slow clients without credentials: many loopback source addresses
// (127.0.0.2 and up) hold connections or requests open while an agent
// that authenticated before keeps calling from 127.0.0.1.

const agentAddr = "127.0.0.1"

// serveForAttack serves f's coordinator with NewServer on a loopback
// port; tune, when set, adjusts the server before it serves. The server
// stops when the test ends.
func serveForAttack(t *testing.T, f *fixture, tune func(*Server)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := f.c.NewServer(ln, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

// tryPost is post for a call that may fail: a connection closed without
// an answer is an error, not a test failure.
func tryPost(src, addr, path, body string) (int, string, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second)) // bounds the test, not the server
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: coordinator\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, len(body), body); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text), err
}

// logBuf collects a logger's JSON records.
type logBuf struct{ agenttest.Output }

// records returns the records logged with msg so far.
func (l *logBuf) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(l.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// captureAdmissionLog sends the admission's log (penalties, the summary
// of refusals) to the returned buffer.
func captureAdmissionLog(f *fixture) *logBuf {
	buf := &logBuf{}
	f.c.admission.log = slog.New(slog.NewJSONHandler(buf, nil))
	return buf
}

// count is a numeric field of a JSON log record, 0 when absent.
func count(rec map[string]any, key string) int {
	n, _ := rec[key].(float64)
	return int(n)
}

const summaryMsg = "api clients refused at the limits"

// inUse is the memory the process holds in heap objects and goroutine
// stacks, after a collection.
func inUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// agentCheckin is an agent's ping with the fixture machine's secret.
const agentCheckin = `{"machine": {"uuid": "` + machineUUID + `", "secret": "machine-secret"}}`

// TestAttackHalfHeaders: 32 addresses open 20 connections each and send
// half a request header. The agent that authenticated before the attack
// still gets every call answered, from the share of connections kept for
// known addresses, and the attack costs a bounded amount of memory.
// wantAttackHarmless checks, while an attack runs, that memory in use grew
// by less than memoryCap since before and that calls check-ins of the
// agent (from agentAddr) to addr all succeed.
func wantAttackHarmless(t *testing.T, before uint64, memoryCap int64, addr string, calls int) {
	t.Helper()
	grown := int64(inUse()) - int64(before)
	t.Logf("memory in use grew by %d KiB during the attack", grown>>10)
	if grown > memoryCap {
		t.Errorf("memory in use grew by %d MiB during the attack, want under %d MiB", grown>>20, memoryCap>>20)
	}
	failed := 0
	for i := range calls {
		code, text, err := tryPost(agentAddr, addr, "/v1/agent_ping_checkin", agentCheckin)
		if err != nil || code != http.StatusOK {
			failed++
			t.Logf("agent's call %d during the attack: %d %q %v", i, code, text, err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d of the agent's calls failed during the attack, want none", failed, calls)
	}
}

func TestAttackHalfHeaders(t *testing.T) {
	const (
		attackers  = 32
		perAddr    = 20
		calls      = 20
		memoryCap  = 24 << 20
		fullShare  = maxConns - maxConns/4
		halfHeader = "POST /v1/agent_ping_checkin HTTP/1.1\r\nHost: coordinator\r\nContent-Type: appl"
	)
	f := newRegistered(t)
	logs := captureAdmissionLog(f)
	decided := make(chan bool, attackers*perAddr+4*calls)
	srv := serveForAttack(t, f, func(s *Server) {
		// The attack must hold for the whole test: the header deadline
		// itself is TestAttackHalfHeaderDeadline's.
		s.srv.ReadHeaderTimeout = time.Minute
		s.ln.(*limitListener).decided = func(taken bool) { decided <- taken }
	})
	addr := srv.Addr().String()
	if code, text, err := tryPost(agentAddr, addr, "/v1/agent_ping_checkin", agentCheckin); err != nil || code != http.StatusOK {
		t.Fatalf("agent's call before the attack: %d %q %v, want 200", code, text, err)
	}
	<-decided

	before := inUse()
	for a := range attackers {
		src := fmt.Sprintf("127.0.0.%d", 2+a)
		for range perAddr {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("dial from %s: %v", src, err)
			}
			t.Cleanup(func() { c.Close() })
			io.WriteString(c, halfHeader) // fails for a connection already refused: expected
		}
	}
	taken := 0
	for range attackers * perAddr {
		if <-decided {
			taken++
		}
	}
	t.Logf("attack: %d of %d half-header connections held", taken, attackers*perAddr)
	wantAttackHarmless(t, before, memoryCap, addr, calls)
	ll := srv.ln.(*limitListener)
	ll.mu.Lock()
	held := ll.count
	ll.mu.Unlock()
	if held < fullShare {
		t.Errorf("after the agent's calls the attack holds %d connections, want at least %d (it must run throughout)", held, fullShare)
	}

	for range calls { // the agent's connections
		<-decided
	}
	// The log: the first refusal at once, the rest in one line a
	// minute later, when the next comes.
	f.clock.Add(summaryEvery)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.40")}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if <-decided {
		t.Error("a connection from another stranger was taken with the strangers' share full")
	}
	recs := logs.records(t, summaryMsg)
	if len(recs) != 2 {
		t.Fatalf("got %d summary lines %v, want 2", len(recs), recs)
	}
	refused := 0
	for _, rec := range recs {
		refused += count(rec, refusedConnsStrangers) + count(rec, refusedConnsPerAddr) + count(rec, refusedConnsFull)
	}
	t.Logf("log: %v", recs[1])
	if want := attackers*perAddr - taken + 1; refused != want || count(recs[1], refusedConnsStrangers) == 0 || count(recs[1], refusedConnsFull) != 0 {
		t.Errorf("summary lines %v: want %d refusals in all, some for the strangers' share, none with every place taken", recs, want)
	}
}

// TestAttackHalfHeaderDeadline: a connection that sends half a request
// header is closed without an answer once the header deadline passes.
func TestAttackHalfHeaderDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	srv := serveForAttack(t, f, nil)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "POST /v1/health HTTP/1.1\r\nHost: coordinator\r\n")
	c.SetReadDeadline(start.Add(4 * headerTimeout)) // bounds the test
	n, err := c.Read(make([]byte, 1))
	elapsed := time.Since(start)
	t.Logf("half a header: closed after %v (header deadline %v)", elapsed.Round(time.Millisecond), headerTimeout)
	if n != 0 || err != io.EOF {
		t.Errorf("half a header: read %d bytes, %v; want the connection closed without an answer", n, err)
	}
}

// slowBody is one attacker's request: headers, then one byte of body a
// second; its result is the status the server answered, or an error.
type slowBody struct {
	src     string
	code    int
	text    string
	err     error
	elapsed time.Duration
}

// sendSlowBody sends a request for path whose body of length bytes comes
// at one byte a second, until the server answers; stop ends it early.
func sendSlowBody(src, addr, path string, length int, stop <-chan struct{}) slowBody {
	res := slowBody{src: src}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		res.err = err
		return res
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: coordinator\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, length)
	answered := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second) // the attack's pace
		defer tick.Stop()
		for range length - 1 {
			select {
			case <-answered:
				return
			case <-stop:
				conn.Close()
				return
			case <-tick.C:
				if _, err := io.WriteString(conn, " "); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(start.Add(60 * time.Second)) // bounds the test
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	res.elapsed = time.Since(start)
	close(answered)
	if err != nil {
		res.err = err
	} else {
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res.code, res.text = resp.StatusCode, string(text)
	}
	conn.Close()
	wg.Wait()
	return res
}

// TestAttackSlowBodies: 8 addresses send 4 requests each whose bodies
// come at one byte a second. The agent that authenticated before is
// served while they hold every place strangers may take; each slow body
// is cut off at the body deadline with 408; memory stays bounded.
func TestAttackSlowBodies(t *testing.T) {
	const (
		attackers = 8
		perAddr   = 4
		calls     = 15
		memoryCap = 16 << 20
	)
	f := newRegistered(t)
	logs := captureAdmissionLog(f)
	admitted := make(chan string, 4*(attackers*perAddr+calls))
	var agentMu sync.Mutex
	var othersInFlight []int // when each of the agent's calls was admitted
	f.c.admission.admitted = func(key string) {
		if key == agentAddr {
			agentMu.Lock()
			othersInFlight = append(othersInFlight, f.c.admission.total-1)
			agentMu.Unlock()
		}
		admitted <- key
	}
	srv := serveForAttack(t, f, nil)
	addr := srv.Addr().String()
	if code, text, err := tryPost(agentAddr, addr, "/v1/agent_ping_checkin", agentCheckin); err != nil || code != http.StatusOK {
		t.Fatalf("agent's call before the attack: %d %q %v, want 200", code, text, err)
	}
	<-admitted

	before := inUse()
	stop := make(chan struct{})
	results := make(chan slowBody, attackers*perAddr)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	for a := range attackers {
		for range perAddr {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- sendSlowBody(fmt.Sprintf("127.0.0.%d", 2+a), addr, "/v1/agent_ping_checkin", 100, stop)
			}()
		}
	}
	// Every attacking request is either admitted and stuck in its body,
	// or refused at once.
	var held int
	var done []slowBody
	guard := time.After(20 * time.Second)
	for held+len(done) < attackers*perAddr {
		select {
		case <-admitted:
			held++
		case r := <-results:
			done = append(done, r)
		case <-guard:
			t.Fatalf("after 20s %d attacking requests admitted and %d answered, want all %d one or the other", held, len(done), attackers*perAddr)
		}
	}
	t.Logf("attack: %d slow requests admitted, %d refused", held, len(done))
	wantAttackHarmless(t, before, memoryCap, addr, calls)
	agentMu.Lock()
	for i, n := range othersInFlight[1:] {
		if n < held {
			t.Errorf("agent's call %d was admitted with %d other requests in flight, want the attack's %d (it must run throughout)", i, n, held)
		}
	}
	agentMu.Unlock()

	// The admitted ones are cut off at the body deadline; the first cut
	// logs the refusals since the first one, a minute ago.
	f.clock.Add(summaryEvery)
	for len(done) < attackers*perAddr {
		select {
		case r := <-results:
			done = append(done, r)
		case <-guard:
			t.Fatalf("after 20s only %d of %d slow requests answered, want every one cut off", len(done), attackers*perAddr)
		}
	}
	var cut int
	var slowest time.Duration
	for _, r := range done {
		switch {
		case r.code == http.StatusTooManyRequests:
		case r.code == http.StatusRequestTimeout && strings.Contains(r.text, "too slow"):
			cut++
			slowest = max(slowest, r.elapsed)
		default:
			t.Errorf("slow request from %s: %d %q %v, want 408 or 429", r.src, r.code, r.text, r.err)
		}
	}
	t.Logf("%d slow requests cut off with 408, the last after %v", cut, slowest.Round(time.Millisecond))
	if cut != held {
		t.Errorf("%d slow requests cut off with 408, want the %d admitted", cut, held)
	}
	recs := logs.records(t, summaryMsg)
	if len(recs) != 2 {
		t.Fatalf("got %d summary lines %v, want 2", len(recs), recs)
	}
	t.Logf("log: %v", recs[1])
	refusedNow := attackers*perAddr - held
	if count(recs[0], refusedBusyStrangers) != 1 || count(recs[1], refusedBusyStrangers) != refusedNow-1 ||
		count(recs[1], refusedSlowBody) != 1 || count(recs[1], refusedBusy) != 0 {
		t.Errorf("summary lines %v: want the first stranger refused, then the other %d and the first slow body, none with every place taken",
			recs, refusedNow-1)
	}
}

// TestAddrKey: limits count an IPv4 address, or an IPv6 /64.
func TestAddrKey(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"192.0.2.7:1234", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:1234", "192.0.2.7"},
		{"[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff:ffff:ffff:ffff]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:443", "2001:db8:1:3::/64"},
		{"[::1]:8410", "::/64"},
		{"[fe80::1%eth0]:8410", "fe80::/64"},
		{"not an address", "not an address"},
	}
	for _, tc := range tests {
		if got := addrKey(tc.remote); got != tc.want {
			t.Errorf("addrKey(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

// TestKnownPerPrefix: an IPv6 agent that proved its secret makes its
// whole /64 known, as its other addresses there (privacy addresses
// change) count as the same client; another /64 stays a stranger.
func TestKnownPerPrefix(t *testing.T) {
	clk := testclock.New(time.Date(2026, 11, 25, 14, 30, 45, 0, time.UTC))
	a := newAdmission(Limits{MaxInFlight: 4}, clk.Now, slog.New(slog.DiscardHandler))
	agent := addrKey("[2001:db8:1:2::10]:50000")
	stranger, ref := a.admit(agent)
	if ref != nil || !stranger {
		t.Fatalf("first call: stranger %v, refusal %v; want admitted as a stranger", stranger, ref)
	}
	a.release(agent, stranger, false, true)
	tests := []struct {
		remote   string
		stranger bool
	}{
		{"[2001:db8:1:2::10]:50001", false},
		{"[2001:db8:1:2:abcd:ef01:2345:6789]:50002", false},
		{"[2001:db8:1:3::10]:50003", true},
		{"192.0.2.7:50004", true},
	}
	for _, tc := range tests {
		key := addrKey(tc.remote)
		stranger, ref := a.admit(key)
		if ref != nil {
			t.Fatalf("%s: refused %v", tc.remote, ref)
		}
		a.release(key, stranger, false, false)
		if stranger != tc.stranger || a.isKnown(key) == tc.stranger {
			t.Errorf("%s: stranger %v, known %v; want stranger %v", tc.remote, stranger, a.isKnown(key), tc.stranger)
		}
	}
	// Known for a day after the last call that proved a secret.
	clk.Add(knownFor)
	if a.isKnown(agent) {
		t.Errorf("%s still known %v after its last authenticated call", agent, knownFor)
	}
}

// TestSlowBodyOverTLS: the body deadline holds under TLS too, and the
// client is told why.
func TestSlowBodyOverTLS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	certFile, keyFile, pool := testcert.Write(t, t.TempDir())
	srv, _ := startServer(t, f, ServerOptions{TLSCert: certFile, TLSKey: keyFile})
	conn, err := tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/agent_ping_checkin HTTP/1.1\r\nHost: coordinator\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	conn.SetReadDeadline(time.Now().Add(4 * agentBodyTimeout)) // bounds the test
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "Request body too slow: agent_ping_checkin must arrive within 5s"
	if resp.StatusCode != http.StatusRequestTimeout || string(text) != want {
		t.Errorf("got %d %q, want 408 %q", resp.StatusCode, text, want)
	}
}

// TestKnownBounded: the known addresses are bounded; past the bound the
// one known longest ago is forgotten.
func TestKnownBounded(t *testing.T) {
	clk := testclock.New(time.Date(2026, 11, 25, 14, 30, 45, 0, time.UTC))
	a := newAdmission(Limits{}, clk.Now, slog.New(slog.DiscardHandler))
	a.mu.Lock()
	for i := range maxKnown {
		a.rememberLocked(fmt.Sprintf("k%d", i), clk.Now())
		clk.Add(time.Millisecond)
	}
	a.rememberLocked("newest", clk.Now())
	n := len(a.known)
	a.mu.Unlock()
	if n != maxKnown {
		t.Errorf("%d known addresses, want at most %d", n, maxKnown)
	}
	if a.isKnown("k0") || !a.isKnown("k1") || !a.isKnown("newest") {
		t.Errorf("known k0 %v, k1 %v, newest %v; want the oldest forgotten", a.isKnown("k0"), a.isKnown("k1"), a.isKnown("newest"))
	}
}

// TestSilentTLSClients: clients that connect to the TLS port and send
// nothing are closed at the handshake deadline, at DEBUG each, and
// counted in the summary warning rather than logged one by one.
func TestSilentTLSClients(t *testing.T) {
	t.Parallel()
	const clients = 3
	f := newFixture(t)
	logs := captureAdmissionLog(f)
	all := &logBuf{}
	f.c.log = slog.New(slog.NewJSONHandler(all, &slog.HandlerOptions{Level: slog.LevelDebug}))
	certFile, keyFile, _ := testcert.Write(t, t.TempDir())
	srv, stop := startServer(t, f, ServerOptions{TLSCert: certFile, TLSKey: keyFile})
	var conns []net.Conn
	for range clients {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		c, err := d.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(4 * headerTimeout)) // bounds the test
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("silent TLS client: read %d bytes, %v; want the connection closed", n, err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(all.records(t, "api TLS handshake failed")); got != clients {
		t.Errorf("%d DEBUG lines for failed handshakes, want %d", got, clients)
	}
	if got := all.records(t, "api server"); len(got) != 0 {
		t.Errorf("net/http's own lines logged as warnings: %v", got)
	}
	// The clock stands still: the first is logged at once, the others
	// wait for the next line a minute later.
	recs := logs.records(t, summaryMsg)
	if len(recs) != 1 || count(recs[0], refusedTLSHandshake) != 1 {
		t.Errorf("summary lines %v, want one counting the first failed handshake", recs)
	}
}
