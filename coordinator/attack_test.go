package coordinator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// repeatReader yields n bytes of a JSON object whose one string value is
// long, without holding the body in memory.
func hugeBody(n int64) io.Reader {
	head := `{"machine": {"uuid": "` + machineUUID + `", "secret": "x", "unit_name": "`
	tail := `"}}`
	fill := n - int64(len(head)+len(tail))
	return io.MultiReader(strings.NewReader(head), io.LimitReader(repeatByte('a'), fill), strings.NewReader(tail))
}

type repeatByte byte

func (b repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// rawPost sends one request on its own connection from the loopback source
// address src and reads the answer even when the server stops reading the
// body early (as it must for a body over the limit).
func rawPost(t *testing.T, src, addr, path string, length int64, body io.Reader) (int, http.Header, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: coordinator\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, length)
		io.Copy(conn, body) // fails once the server closes: expected
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	conn.Close()
	wg.Wait()
	return resp.StatusCode, resp.Header, string(text)
}

// allocated is the heap allocated so far, in total. It only grows, so its
// growth over an attack bounds from above the live heap the attack cost
// (the test's own client side included).
func allocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

func TestAttackHugeBodies(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.c.Handler())
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	runtime.GC()
	before := allocated()
	const size = 15 << 20
	const n = 6
	var wg sync.WaitGroup
	codes := make([]int, n)
	bodies := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := fmt.Sprintf("127.0.0.%d", 10+i)
			codes[i], _, bodies[i] = rawPost(t, src, addr, "/v1/update_config", size, hugeBody(size))
		}()
	}
	wg.Wait()
	grown := allocated() - before
	for i := range n {
		if codes[i] != http.StatusRequestEntityTooLarge || !strings.Contains(bodies[i], "too large") {
			t.Errorf("request %d: got %d %q, want 413 naming the limit", i, codes[i], bodies[i])
		}
	}
	t.Logf("allocated %d KiB for %d concurrent 15 MiB bodies", grown>>10, n)
	if grown > 32<<20 {
		t.Errorf("allocated %d MiB, want under 32 MiB", grown>>20)
	}
}

// stalledRequest is a request admitted and then stuck reading its body,
// as a client that sends headers and trickles the rest would hold it.
type stalledRequest struct {
	conn net.Conn
}

// stall opens a request from src that the server admits and then waits on.
func stall(t *testing.T, src, addr string) *stalledRequest {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /v1/agent_ping_checkin HTTP/1.1\r\nHost: coordinator\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	return &stalledRequest{conn: conn}
}

func post(t *testing.T, src, addr, path, body string) (int, http.Header, string) {
	t.Helper()
	return rawPost(t, src, addr, path, int64(len(body)), strings.NewReader(body))
}

// attackServer serves f's network handler on loopback and reports every
// admission on the returned channel.
func attackServer(t *testing.T, f *fixture) (string, chan string) {
	t.Helper()
	admitted := make(chan string, 100)
	f.c.admission.admitted = func(key string) { admitted <- key }
	srv := httptest.NewServer(f.c.Handler())
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), admitted
}

// wantKnownAgentServed checks that the agent that proved its secret from
// 127.0.0.3 is admitted and answered at once; with names the situation.
func wantKnownAgentServed(t *testing.T, addr string, admitted <-chan string, with string) {
	t.Helper()
	code, _, body := post(t, "127.0.0.3", addr, "/v1/agent_ping_checkin", agentCheckin)
	<-admitted
	if code != http.StatusOK {
		t.Errorf("known agent with %s: %d %q, want 200", with, code, body)
	}
}

func TestAttackConcurrentRequests(t *testing.T) {
	f := newFixture(t)
	f.c.admission.lim.MaxInFlight = 8 // strangers may take 6
	f.c.admission.lim.MaxInFlightPerAddr = 4
	addr, admitted := attackServer(t, f)
	f.register(t, obj{"etc": etcSource})

	// An agent proves its secret: its address is known from now on.
	if code, _, body := post(t, "127.0.0.3", addr, "/v1/agent_ping_checkin", agentCheckin); code != http.StatusOK {
		t.Fatalf("agent before the attack: %d %q, want 200", code, body)
	}
	<-admitted

	// One address holds as many requests as it may; its next is refused.
	holdRequests(t, "127.0.0.2", addr, admitted, 4)
	if body := wantTooMany(t, "127.0.0.2", addr, "fifth request from one address"); !strings.Contains(body, "your address") {
		t.Errorf("fifth request from one address: %q, want it to name your address", body)
	}
	// Strangers fill their share; the next stranger is refused.
	holdRequests(t, "127.0.0.4", addr, admitted, 2)
	wantTooMany(t, "127.0.0.5", addr, "stranger over the strangers' share")
	// The known agent is served from the share kept for known addresses.
	wantKnownAgentServed(t, addr, admitted, "the strangers' share full")
	// The cap over all addresses holds for known addresses too.
	holdRequests(t, "127.0.0.3", addr, admitted, 2)
	wantTooMany(t, "127.0.0.3", addr, "known agent over the global cap")
}

// holdRequests has src hold n requests, each admitted and then stalled.
func holdRequests(t *testing.T, src, addr string, admitted <-chan string, n int) {
	t.Helper()
	for range n {
		stall(t, src, addr)
		<-admitted
	}
}

// wantTooMany checks that a check-in from src is refused at once with 429
// and a Retry-After, and returns the answer's text; what names the request.
func wantTooMany(t *testing.T, src, addr, what string) string {
	t.Helper()
	code, hdr, body := post(t, src, addr, "/v1/agent_ping_checkin", agentCheckin)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Errorf("%s: %d %q Retry-After %q, want 429 with Retry-After", what, code, body, hdr.Get("Retry-After"))
	}
	return body
}

func TestAttackArgon2SlotsFull(t *testing.T) {
	f := newFixture(t)
	addr, admitted := attackServer(t, f)
	f.register(t, obj{"etc": etcSource})
	// The registration verified this machine's secret once: it is cached.
	// Take every verification slot, as a burst of wrong secrets would.
	sem := f.c.store.secrets.sem
	for range cap(sem) {
		sem <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(sem) {
			<-sem
		}
	})
	wrong := `{"machine": {"uuid": "` + machineUUID + `", "secret": "guess"}, "auth": {"name": "Machine Registrations", "secret": "guess"}}`
	code, hdr, body := post(t, "127.0.0.2", addr, "/v1/update_config", wrong)
	<-admitted
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("wrong secret with the slots full: %d %q Retry-After %q, want 503 at once with Retry-After", code, body, hdr.Get("Retry-After"))
	}
	// An unknown machine gets the same answer, so the 503 does not tell
	// which machines exist.
	unknown := `{"machine": {"uuid": "` + otherUUID + `", "secret": "guess"}}`
	code, hdr, body = post(t, "127.0.0.4", addr, "/v1/agent_ping_checkin", unknown)
	<-admitted
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("unknown machine with the slots full: %d %q, want 503 like a known one", code, body)
	}
	// A known agent whose secret was verified before is not held up.
	wantKnownAgentServed(t, addr, admitted, "the slots full")
}

func TestAttackWrongSecrets(t *testing.T) {
	f := newFixture(t)
	f.c.admission.lim.PenaltyFailures = 3
	addr, admitted := attackServer(t, f)
	// Guesses at the registration secret under the well-known auth name.
	guess := func(i int) string {
		return fmt.Sprintf(`{"machine": {"uuid": "%s", "secret": "s"}, "auth": {"name": %q, "secret": "guess-%d"}}`,
			otherUUID, RegistrationAuthName, i)
	}
	runtime.GC()
	before := allocated()
	for i := range 3 {
		code, _, body := post(t, "127.0.0.2", addr, "/v1/update_config", guess(i))
		<-admitted
		if code != http.StatusForbidden || body != "Bad auth" {
			t.Fatalf("guess %d: %d %q, want 403 Bad auth", i, code, body)
		}
	}
	// Penalised: refused before any secret is hashed, for PenaltyBase.
	for i := range 20 {
		code, hdr, body := post(t, "127.0.0.2", addr, "/v1/update_config", guess(3+i))
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "30" {
			t.Fatalf("guess %d after the penalty: %d %q Retry-After %q, want 429, Retry-After 30", 3+i, code, body, hdr.Get("Retry-After"))
		}
	}
	t.Logf("allocated %d KiB for 23 guesses", (allocated()-before)>>10)
	select {
	case key := <-admitted:
		t.Errorf("a penalised request from %s was admitted", key)
	default:
	}
	// Another address registers normally.
	reg, _ := json.Marshal(agentConfig(obj{}))
	code, _, body := post(t, "127.0.0.3", addr, "/v1/update_config", string(reg))
	<-admitted
	if code != http.StatusOK {
		t.Errorf("registration from another address: %d %q, want 200", code, body)
	}
	// The penalty ends, and the next one lasts twice as long.
	f.clock.Add(31 * time.Second)
	for i := range 3 {
		post(t, "127.0.0.2", addr, "/v1/update_config", guess(100+i))
		<-admitted
	}
	if _, hdr, _ := post(t, "127.0.0.2", addr, "/v1/update_config", guess(200)); hdr.Get("Retry-After") != "60" {
		t.Errorf("second penalty: Retry-After %q, want 60", hdr.Get("Retry-After"))
	}
}

func TestNetworkHandlerRefusesStorageCalls(t *testing.T) {
	f := newFixture(t)
	addr, _ := attackServer(t, f)
	for _, call := range []string{"storage_update_config", "storage_ping_checkin", "storage_ping_source_update"} {
		body, _ := json.Marshal(obj{"storage": storageAuth(), "machine": obj{"uuid": machineUUID}})
		code, _, text := post(t, "127.0.0.2", addr, "/v1/"+call, string(body))
		if code != http.StatusNotFound {
			t.Errorf("%s on the network handler: %d %q, want 404", call, code, text)
		}
	}
}

func TestRequestShape(t *testing.T) {
	f := newFixture(t)
	deep := `{"machine": {"uuid": "x", "secret": "y", "sources": {"a": {"path": "/", "x": ` +
		strings.Repeat("[", 10) + strings.Repeat("]", 10) + `}}}}`
	tests := []struct {
		name, path, body string
		wantCode         int
		wantBody         string
	}{
		{"unknown top-level field", "/v1/agent_ping_checkin", `{"machine": {"uuid": "x", "secret": "y"}, "extra": 1}`,
			400, `Unknown field "extra"`},
		{"unknown machine field", "/v1/agent_ping_checkin", `{"machine": {"uuid": "x", "secret": "y", "sources": {}}}`,
			400, `Unknown field "machine.sources"`},
		{"unknown auth field", "/v1/update_config", `{"machine": {"uuid": "x", "secret": "y"}, "auth": {"name": "a", "secret": "b", "c": 1}}`,
			400, `Unknown field "auth.c"`},
		{"too deep", "/v1/update_config", deep, 400, "invalid JSON: nested deeper than 8 levels"},
		{"brackets in strings do not count", "/v1/update_config",
			`{"machine": {"uuid": "x", "secret": "` + strings.Repeat("[", 20) + `"}}`, 400, "Invalid machine UUID"},
		{"too many values", "/v1/update_config", `{"machine": {"uuid": "x", "secret": "y", "sources": {"a": [` +
			strings.Repeat("0,", 9000) + `0]}}}`, 400, "invalid JSON: more than 8192 values"},
		{"checkin body over 4 KiB", "/v1/agent_ping_checkin", `{"machine": {"uuid": "` + strings.Repeat("a", 4100) + `"}}`,
			413, "Request body too large: agent_ping_checkin takes at most 4096 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.post(t, tc.path, tc.body)
			if code != tc.wantCode || body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", code, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(`{"machine": {"uuid": "x", "secret": "y", "sources": {"a": {"path": "/", "filter": ["- a"]}}}}`)
	f.Add(`{"machine": {"uuid": "[[[[", "secret": "\\\"[["}}`)
	f.Add(`{"a": [[[[[[[[[[]]]]]]]]]]}`)
	f.Add(`{"machine": {"extra": 1}}`)
	want := fields{"machine": fields{"uuid": nil, "secret": nil, "sources": nil}}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeRequest(strings.NewReader(body), want)
		if err != nil {
			return
		}
		if d := depth(req); d > maxDepth {
			t.Errorf("decoded %q with depth %d, over %d", body, d, maxDepth)
		}
		if err := checkFields(req, want, ""); err != nil {
			t.Errorf("decoded %q with a field the call does not take: %v", body, err)
		}
	})
}

// depth is the nesting of a decoded JSON value: 1 for an empty object.
func depth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

func TestAttackIdleConnections(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := f.c.Listener(ln).(*limitListener)
	closed := make(chan struct{}, 100)
	ll.closed = func() { closed <- struct{}{} }
	srv := &httptest.Server{Listener: ll, Config: &http.Server{Handler: f.c.Handler()}}
	srv.Start()
	t.Cleanup(srv.Close)
	addr := ln.Addr().String()

	// One address opens connections and sends nothing.
	var idle []net.Conn
	for range maxConnsPerAddr {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		idle = append(idle, c)
	}
	// Its next connection is closed at once, without an answer.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/health HTTP/1.1\r\nHost: c\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("connection over the per-address cap: read %d bytes, want it closed", n)
	}
	// Another address is served.
	if code, _, body := post(t, "127.0.0.3", addr, "/v1/health", "{}"); code != http.StatusOK {
		t.Errorf("health from another address: %d %q, want 200", code, body)
	}
	<-closed // that connection's place given back
	// Closing one idle connection frees its place.
	idle[0].Close()
	<-closed
	if code, _, body := post(t, "127.0.0.2", addr, "/v1/health", "{}"); code != http.StatusOK {
		t.Errorf("health after a connection closed: %d %q, want 200", code, body)
	}
}

func TestBodyLimitWithoutLength(t *testing.T) {
	// A chunked body has no Content-Length to refuse up front: reading
	// stops at the limit.
	f := newFixture(t)
	body := `{"machine": {"uuid": "` + strings.Repeat("a", 5000) + `", "secret": "s"}}`
	req := httptest.NewRequest(http.MethodPost, "/v1/agent_ping_checkin", io.NopCloser(strings.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.c.Handler().ServeHTTP(rec, req)
	want := "Request body too large: agent_ping_checkin takes at most 4096 bytes"
	if rec.Code != http.StatusRequestEntityTooLarge || rec.Body.String() != want {
		t.Errorf("got %d %q, want 413 %q", rec.Code, rec.Body.String(), want)
	}
}

// TestLoginRefusalsCostOneHash: every refused login costs one argon2
// derivation with the parameters of the stored secrets, whether the
// machine, storage unit or registration auth named exists or not, so the
// time a refusal takes does not tell which names exist.
func TestLoginRefusalsCostOneHash(t *testing.T) {
	f := newRegistered(t)
	type params struct {
		time, memory uint32
		threads      uint8
	}
	var mu sync.Mutex
	var derived []params
	f.c.store.secrets.derived = func(tm, mem uint32, th uint8) {
		mu.Lock()
		defer mu.Unlock()
		derived = append(derived, params{tm, mem, th})
	}
	want := params{testArgon2.Time, testArgon2.MemoryKiB, testArgon2.Threads}
	unknown := obj{"uuid": otherUUID, "secret": "guess"}
	tests := []struct {
		name, path string
		body       obj
	}{
		{"known machine, wrong secret", "/v1/agent_ping_checkin", obj{"machine": obj{"uuid": machineUUID, "secret": "guess"}}},
		{"unknown machine", "/v1/agent_ping_checkin", obj{"machine": unknown}},
		{"unknown machine, restore", "/v1/agent_ping_restore", obj{"machine": unknown}},
		{"known machine, secret not a string", "/v1/agent_ping_checkin", obj{"machine": obj{"uuid": machineUUID, "secret": 1}}},
		{"update_config, known machine, wrong secret", "/v1/update_config", obj{"machine": obj{"uuid": machineUUID, "secret": "guess"}}},
		{"update_config, unknown machine, no auth", "/v1/update_config", obj{"machine": unknown}},
		{"update_config, unknown machine, empty auth secret", "/v1/update_config",
			obj{"machine": unknown, "auth": obj{"name": RegistrationAuthName, "secret": ""}}},
		{"registration, unknown auth name", "/v1/update_config",
			obj{"machine": unknown, "auth": obj{"name": "Guessed Registrations", "secret": "guess"}}},
		{"registration, wrong secret", "/v1/update_config",
			obj{"machine": unknown, "auth": obj{"name": RegistrationAuthName, "secret": "guess"}}},
		{"registration, auth of the wrong type", "/v1/storage_update_config",
			obj{"storage": obj{"name": "other", "secret": "s"}, "auth": obj{"name": RegistrationAuthName, "secret": "guess"}}},
		{"unknown storage unit", "/v1/storage_ping_checkin", obj{"storage": obj{"name": "other", "secret": "guess"}, "machine": obj{"uuid": machineUUID}}},
		{"known storage unit, wrong secret", "/v1/storage_ping_checkin", obj{"storage": obj{"name": storageName, "secret": "guess"}, "machine": obj{"uuid": machineUUID}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			derived = nil
			mu.Unlock()
			code, body := f.post(t, tc.path, tc.body)
			if code != http.StatusForbidden || body != "Bad auth" {
				t.Fatalf("got %d %q, want 403 Bad auth", code, body)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(derived) != 1 || derived[0] != want {
				t.Errorf("key derivations %v, want exactly one with %v", derived, want)
			}
		})
	}
}

// TestHealthDoesNotClearFailures: only an authenticated call clears an
// address's count of wrong secrets; health, which anyone may call, does
// not, or a guesser could call it between guesses and never be penalised.
func TestHealthDoesNotClearFailures(t *testing.T) {
	f := newFixture(t)
	f.c.admission.lim.PenaltyFailures = 3
	addr, admitted := attackServer(t, f)
	guess := `{"machine": {"uuid": "` + otherUUID + `", "secret": "s"}, "auth": {"name": "Machine Registrations", "secret": "guess"}}`
	for i, path := range []string{"update_config", "update_config", "health", "update_config"} {
		body := guess
		if path == "health" {
			body = "{}"
		}
		code, _, text := post(t, "127.0.0.2", addr, "/v1/"+path, body)
		<-admitted
		if want := map[bool]int{true: 200, false: 403}[path == "health"]; code != want {
			t.Fatalf("call %d (%s): %d %q, want %d", i, path, code, text, want)
		}
	}
	if code, _, text := post(t, "127.0.0.2", addr, "/v1/update_config", guess); code != http.StatusTooManyRequests {
		t.Errorf("after three wrong secrets and a health call: %d %q, want 429", code, text)
	}
}

// BenchmarkWrongSecret measures what a wrong secret costs with the
// default argon2 parameters, for a machine that exists and one that does
// not; the two should be alike (TestLoginRefusalsCostOneHash asserts it).
func BenchmarkWrongSecret(b *testing.B) {
	c, err := New(Options{
		DBPath:             filepath.Join(b.TempDir(), "coordinator.db"),
		Storage:            StorageIdentity{Name: storageName, Secret: storageSecret, SSHPingHost: "primary.example.com"},
		RegistrationSecret: regSecret,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	h := c.InProcessHandler()
	send := func(body string) int {
		req := httptest.NewRequest(http.MethodPost, "/v1/update_config", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	reg, _ := json.Marshal(agentConfig(obj{}))
	if code := send(string(reg)); code != http.StatusOK {
		b.Fatalf("registration: %d", code)
	}
	for _, bc := range []struct{ name, uuid string }{{"known", machineUUID}, {"unknown", otherUUID}} {
		b.Run(bc.name, func(b *testing.B) {
			body := `{"machine": {"uuid": "` + bc.uuid + `", "secret": "guess"}}`
			for b.Loop() {
				if code := send(body); code != http.StatusForbidden {
					b.Fatalf("got %d, want 403", code)
				}
			}
		})
	}
}
