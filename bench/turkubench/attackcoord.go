//go:build bench

package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// Measurement (g), slow clients on the built-in coordinator (ours only:
// OpenSSH has no coordinator). A second serve runs without api_url, so its
// built-in coordinator serves the agent API on coordinator_listen; coordAgents
// machines register through it (update_config with the registration
// secret, as turku-update-config does) and then each calls
// agent_ping_checkin with its own secret, from its own address, one call
// after another with coordPause between them: first quiet, then while
//
//   - coordHeaderAddrs addresses (127.0.8.N) each hold coordHeaderConns
//     connections that sent half a request header and nothing more, and
//   - coordBodyAddrs addresses (127.0.9.N) each hold coordBodyConns
//     requests whose header is complete and whose body (coordBodyLen bytes
//     announced) comes at one byte a second.
//
// Every attacking connection the server closes is reopened after
// coordRedial.

const (
	coordAgents      = 4
	coordAgentAt     = "127.0.7.%d"
	coordHeaderAddrs = 32
	coordHeaderConns = 20
	coordHeaderAt    = "127.0.8.%d"
	coordBodyAddrs   = 8
	coordBodyConns   = 4
	coordBodyAt      = "127.0.9.%d"
	coordBodyLen     = 4000 // under the agent calls' 4 KiB body limit
	coordRedial      = 200 * time.Millisecond
	coordPause       = 200 * time.Millisecond
	coordCallTimeout = 10 * time.Second
	coordRegSecret   = "bench-registration-secret"
)

// coordResult is the coordinator under slow clients.
type coordResult struct {
	QuietOK, QuietTried       int
	AttackedOK, AttackedTried int
	Quiet                     *stat // latency of the successful calls, ms
	Attacked                  *stat
	// Failures: the answers or errors of the failed calls, and how often.
	QuietFailures    map[string]int `json:",omitempty"`
	AttackedFailures map[string]int `json:",omitempty"`
	// The attack: connections open when it ended, and opened in all, per
	// kind; body bytes sent.
	HeaderOpen, HeaderOpened int64
	BodyOpen, BodyOpened     int64
	BodyBytes                int64
	QuietSecs, AttackSecs    float64
	Before, During, After    procState
}

// coordSite is the serve with the built-in coordinator.
type coordSite struct {
	dir   string
	url   string // the agent API's base URL
	serve *exec.Cmd
}

func (b *bench) startCoordServe(ctx context.Context) (*coordSite, error) {
	cs := &coordSite{dir: filepath.Join(b.work, "coordinator")}
	apiPort, err := agenttest.PickFreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	sshPort, err := agenttest.PickFreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"config.d", "vol", "var", "lock"} {
		if err := os.MkdirAll(filepath.Join(cs.dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort))
	cfg := map[string]any{
		"name":                        storageName,
		"secret":                      storageSecret,
		"machine_registration_secret": coordRegSecret,
		"coordinator_listen":          apiAddr,
		"volumes":                     map[string]any{"default": map[string]any{"path": filepath.Join(cs.dir, "vol")}},
		"var_dir":                     filepath.Join(cs.dir, "var"),
		"lock_dir":                    filepath.Join(cs.dir, "lock"),
		"control_socket":              filepath.Join(cs.dir, "control.sock"),
		"log_file":                    filepath.Join(cs.dir, "serve.log"),
		"ssh_listen":                  net.JoinHostPort("127.0.0.1", strconv.Itoa(sshPort)),
		"ssh_ping_host":               "127.0.0.1",
		"ssh_ping_port":               sshPort,
		"ssh_ping_user":               loginUser,
		"ssh_host_key_files":          []string{b.s.hostKeyFile},
	}
	data, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(cs.dir, "config.d", "10-bench.json"), data, 0o600); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(cs.dir, "serve.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(b.s.bin, "-c", cs.dir, "serve", "--shutdown-timeout", "10s")
	cmd.Env = append(os.Environ(), b.s.serveEnv...)
	cmd.Stdout, cmd.Stderr = out, out
	done, err := b.s.p.start(cmd)
	if err != nil {
		return nil, fmt.Errorf("start serve with the built-in coordinator: %w", err)
	}
	cs.serve = cmd
	if err := waitListening(ctx, apiAddr, done); err != nil {
		b.s.p.stop(cmd, 15*time.Second)
		o, _ := os.ReadFile(out.Name())
		return nil, fmt.Errorf("built-in coordinator: %w: %s", err, o)
	}
	cs.url = "http://" + apiAddr + "/v1"
	return cs, nil
}

// coordClient is one agent's HTTP client: a new connection for every
// call, from the agent's own address.
func coordClient(src string) *http.Client {
	d := dialer(src)
	return &http.Client{
		Timeout: coordCallTimeout,
		Transport: &http.Transport{
			DialContext:       d.DialContext,
			DisableKeepAlives: true,
		},
	}
}

// call posts body to the agent API's name call and returns the status
// (0 with err for a failure below HTTP) and the answer's first line.
func call(ctx context.Context, c *http.Client, base, name string, body any) (int, string, error) {
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+name, bytes.NewReader(data))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	line, _, _ := strings.Cut(string(b), "\n")
	return resp.StatusCode, line, nil
}

// legit runs the agents' calls until stop closes; it returns the calls
// tried, those that succeeded with their latency, and the failures.
func legit(ctx context.Context, base string, ms []*machine, secrets []string, stop <-chan struct{}) (tried, ok int, lat *stat, fails map[string]int) {
	lat = &stat{Unit: "ms"}
	fails = map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := coordClient(fmt.Sprintf(coordAgentAt, i+1))
			body := map[string]any{"machine": map[string]any{"uuid": m.uuid, "secret": secrets[i]}}
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				t0 := time.Now()
				status, text, err := call(ctx, c, base, "agent_ping_checkin", body)
				d := time.Since(t0)
				mu.Lock()
				tried++
				switch {
				case err != nil:
					fails[errText(err)]++
				case status != http.StatusOK:
					fails[fmt.Sprintf("%d %s", status, text)]++
				default:
					ok++
					lat.add(float64(d) / float64(time.Millisecond))
				}
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(coordPause):
				}
			}
		}()
	}
	wg.Wait()
	return tried, ok, lat, fails
}

// errText is an error without the parts that differ from call to call
// (ports, the URL).
func errText(err error) string {
	s := err.Error()
	for _, k := range []string{"EOF", "connection reset by peer", "Client.Timeout exceeded", "connection refused", "broken pipe", "server closed idle connection"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return s
}

// slowClients is the attack: half headers and slow bodies.
type slowClients struct {
	addr                     string
	stop                     chan struct{}
	wg                       sync.WaitGroup
	headerOpen, headerOpened atomic.Int64
	bodyOpen, bodyOpened     atomic.Int64
	bodyBytes                atomic.Int64
	attempts                 []atomic.Int64
}

func startSlowClients(addr string) *slowClients {
	s := &slowClients{addr: addr, stop: make(chan struct{}),
		attempts: make([]atomic.Int64, coordHeaderAddrs*coordHeaderConns+coordBodyAddrs*coordBodyConns)}
	// Half of a header an agent would send.
	header := "POST /v1/agent_ping_checkin HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: python-requests/2.28.1\r\nAccept-Encoding: gzip, deflate\r\n"
	half := header[:len(header)/2]
	i := 0
	for a := range coordHeaderAddrs {
		for range coordHeaderConns {
			s.wg.Add(1)
			go s.run(i, fmt.Sprintf(coordHeaderAt, a+1), &s.headerOpen, &s.headerOpened, func(c net.Conn) {
				c.Write([]byte(half))
				io.Copy(io.Discard, c)
			})
			i++
		}
	}
	body := fmt.Sprintf("POST /v1/agent_ping_checkin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", coordBodyLen)
	for a := range coordBodyAddrs {
		for range coordBodyConns {
			s.wg.Add(1)
			go s.run(i, fmt.Sprintf(coordBodyAt, a+1), &s.bodyOpen, &s.bodyOpened, func(c net.Conn) {
				if _, err := c.Write([]byte(body)); err != nil {
					return
				}
				closed := make(chan struct{})
				go func() {
					io.Copy(io.Discard, c)
					close(closed)
				}()
				t := time.NewTicker(time.Second)
				defer t.Stop()
				for range coordBodyLen {
					select {
					case <-closed:
						return
					case <-t.C:
					}
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
					s.bodyBytes.Add(1)
				}
				<-closed
			})
			i++
		}
	}
	return s
}

// run keeps one attacking connection from src open, reopening it after
// coordRedial whenever it ends; hold is what it does while open.
func (s *slowClients) run(i int, src string, open, opened *atomic.Int64, hold func(net.Conn)) {
	defer s.wg.Done()
	keepDialing(s.stop, dialer(src), s.addr, coordRedial, func(c net.Conn) {
		opened.Add(1)
		open.Add(1)
		s.attempts[i].Add(1)
		hold(c)
	}, func(err error) {
		if err == nil {
			open.Add(-1)
		} else {
			s.attempts[i].Add(1)
		}
	})
}

func (s *slowClients) settled() bool {
	for i := range s.attempts {
		if s.attempts[i].Load() < 1 && s.headerOpen.Load()+s.bodyOpen.Load() < int64(len(s.attempts)) {
			return false
		}
	}
	return true
}

func (s *slowClients) end() {
	close(s.stop)
	s.wg.Wait()
}

// coordinatorAttack is the slow-client measurement.
func (b *bench) coordinatorAttack(ctx context.Context, p attackParams) (*coordResult, error) {
	cs, err := b.startCoordServe(ctx)
	if err != nil {
		return nil, err
	}
	defer b.s.p.stop(cs.serve, 15*time.Second)
	pid := cs.serve.Process.Pid
	r := &coordResult{}

	// Registration, as turku-update-config does it, with random UUIDs
	// as agents make them (the coordinator refuses implausible ones, as
	// turku-api does).
	ms := make([]*machine, coordAgents)
	secrets := make([]string, len(ms))
	for i := range ms {
		m := *b.filler[len(b.filler)-coordAgents+i]
		m.uuid = randomUUID()
		ms[i] = &m
		secrets[i] = fmt.Sprintf("bench-machine-secret-%d-%016x", i, rand.Uint64())
		status, text, err := call(ctx, coordClient(fmt.Sprintf(coordAgentAt, i+1)), cs.url, "update_config", map[string]any{
			"machine": map[string]any{"uuid": m.uuid, "secret": secrets[i], "unit_name": m.unit,
				"ssh_public_key": m.pub, "sources": map[string]any{}},
			"auth": map[string]any{"name": "Machine Registrations", "secret": coordRegSecret},
		})
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("register %s with the built-in coordinator: %d %s %v", m.uuid, status, text, err)
		}
	}
	r.Before = serverState(pid)

	stop := make(chan struct{})
	t := time.AfterFunc(p.CoordQuiet, func() { close(stop) })
	t0 := time.Now()
	r.QuietTried, r.QuietOK, r.Quiet, r.QuietFailures = legit(ctx, cs.url, ms, secrets, stop)
	t.Stop()
	r.QuietSecs = time.Since(t0).Seconds()
	b.logf("  coordinator quiet: %d/%d calls, %.1f ms", r.QuietOK, r.QuietTried, r.Quiet.Median())

	sc := startSlowClients(strings.TrimPrefix(strings.TrimSuffix(cs.url, "/v1"), "http://"))
	endAttack := sync.OnceFunc(sc.end)
	defer endAttack()
	waitUntil(ctx, 30*time.Second, sc.settled)
	r.During = serverState(pid)
	b.logf("  coordinator attack on: %d half headers, %d slow bodies open; %+v", sc.headerOpen.Load(), sc.bodyOpen.Load(), r.During)
	stop = make(chan struct{})
	t = time.AfterFunc(p.CoordAttack, func() { close(stop) })
	t0 = time.Now()
	r.AttackedTried, r.AttackedOK, r.Attacked, r.AttackedFailures = legit(ctx, cs.url, ms, secrets, stop)
	t.Stop()
	r.AttackSecs = time.Since(t0).Seconds()
	r.HeaderOpen, r.BodyOpen = sc.headerOpen.Load(), sc.bodyOpen.Load()
	r.After = serverState(pid)
	endAttack()
	r.HeaderOpened, r.BodyOpened, r.BodyBytes = sc.headerOpened.Load(), sc.bodyOpened.Load(), sc.bodyBytes.Load()
	b.logf("  coordinator under attack: %d/%d calls, %.1f ms; failures %v; half headers %d open (%d opened), slow bodies %d open (%d opened); %+v",
		r.AttackedOK, r.AttackedTried, r.Attacked.Median(), r.AttackedFailures, r.HeaderOpen, r.HeaderOpened, r.BodyOpen, r.BodyOpened, r.After)
	return r, nil
}

// randomUUID is a version 4 UUID (RFC 4122 §4.4), as Python's uuid4.
func randomUUID() string {
	var u [16]byte
	crand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// topFailures renders failures, most frequent first.
func topFailures(f map[string]int) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return f[b] - f[a] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d× %s", f[k], k))
	}
	return strings.Join(parts, "; ")
}
