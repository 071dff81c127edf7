//go:build bench

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

const (
	storageName   = "bench"
	storageSecret = "bench-storage-secret"
	loginUser     = "root" // sshd maps it to a Unix user: run as the current user
)

// machine is one registered machine. Only those that play an agent get a
// private key file (keyFile).
type machine struct {
	uuid    string
	unit    string
	pub     string // authorized_keys form, as turku-api hands it out
	priv    ed25519.PrivateKey
	keyFile string
}

func newMachine(i int) machine {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return machine{
		uuid: fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
		unit: fmt.Sprintf("unit%05d", i),
		pub:  strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp))),
		priv: priv,
	}
}

// writeKey writes m's private key (OpenSSH format, 0600) under dir.
func (m *machine) writeKey(dir string) error {
	if m.keyFile != "" {
		return nil
	}
	block, err := gossh.MarshalPrivateKey(m.priv, m.unit)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, m.unit+".key")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	m.keyFile = path
	return nil
}

// site is everything both servers share: the fake coordinator, the host
// key, the two storage configurations, and the servers themselves.
type site struct {
	work string
	bin  string // turku-storage
	p    *procs
	logf func(format string, args ...any)

	api        *apitest.Server
	registered map[string]*machine // machines the fake API assigns us

	hostKeyFile string
	hostKeyPub  string
	knownHosts  string
	keyDir      string

	// OpenSSH baseline.
	sshdDir    string
	sshdConfig string
	sshdPort   int
	sshd       *exec.Cmd
	authKeys   string
	// sshdMaxStartups is sshd's MaxStartups; "" is "100".
	sshdMaxStartups string
	pingDir         string // config dir of `turku-storage ping`

	// Ours.
	oursDir   string
	servePort int
	serveEnv  []string // extra environment for serve only (e.g. GOGC=400)
	serve     *exec.Cmd
	serveLog  string
	// forgetSources makes restartServe remove serve's known sources.
	forgetSources bool
}

func newSite(work, bin string, p *procs, logf func(string, ...any)) (*site, error) {
	s := &site{work: work, bin: bin, p: p, logf: logf, registered: map[string]*machine{}}
	s.keyDir = filepath.Join(work, "keys")
	s.sshdDir = filepath.Join(work, "openssh")
	s.pingDir = filepath.Join(work, "openssh", "turku")
	s.oursDir = filepath.Join(work, "ours")
	for _, d := range []string{s.keyDir, s.sshdDir, s.pingDir, s.oursDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	s.api = apitest.New()
	s.api.AddStorage(storageName, storageSecret)

	// One host key for both servers: one known_hosts serves every run.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := gossh.MarshalPrivateKey(priv, "bench host key")
	if err != nil {
		return nil, err
	}
	s.hostKeyFile = filepath.Join(s.keyDir, "ssh_host_ed25519_key")
	if err := os.WriteFile(s.hostKeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	s.hostKeyPub = strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey())))
	s.knownHosts = filepath.Join(s.keyDir, "known_hosts")
	if err := os.WriteFile(s.knownHosts, []byte("127.0.0.1 "+s.hostKeyPub+"\n"), 0o600); err != nil {
		return nil, err
	}
	if s.sshdPort, err = agenttest.PickFreePort("127.0.0.1"); err != nil {
		return nil, err
	}
	if s.servePort, err = agenttest.PickFreePort("127.0.0.1"); err != nil {
		return nil, err
	}
	s.serveLog = filepath.Join(s.oursDir, "serve.log")
	if err := s.writeStorageConfig(s.oursDir, s.servePort, s.serveLog); err != nil {
		return nil, err
	}
	if err := s.writeStorageConfig(s.pingDir, s.sshdPort, filepath.Join(s.pingDir, "ping.log")); err != nil {
		return nil, err
	}
	return s, nil
}

// writeStorageConfig writes dir/config.d/10-bench.json; the two servers
// differ only in their port, directories and log file.
func (s *site) writeStorageConfig(dir string, port int, logFile string) error {
	cfg := map[string]any{
		"name":    storageName,
		"secret":  storageSecret,
		"api_url": s.api.BaseURL(),
		"volumes": map[string]any{
			"default": map[string]any{"path": filepath.Join(dir, "vol")},
		},
		"var_dir":                filepath.Join(dir, "var"),
		"lock_dir":               filepath.Join(dir, "lock"),
		"control_socket":         filepath.Join(dir, "control.sock"),
		"log_file":               logFile,
		"ssh_listen":             net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"ssh_ping_host":          "127.0.0.1",
		"ssh_ping_port":          port,
		"ssh_ping_user":          loginUser,
		"ssh_host_key_files":     []string{s.hostKeyFile},
		"update_config_interval": "1h",
	}
	for _, d := range []string{"config.d", "vol", "var", "lock"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	data, _ := json.MarshalIndent(cfg, "", "  ")
	return os.WriteFile(filepath.Join(dir, "config.d", "10-bench.json"), data, 0o600)
}

// setMachines makes ms (in this order) the machines assigned to the storage
// unit: in the fake API, and as authorized_keys lines with the forced
// command for OpenSSH. It restarts serve so that it loads them.
func (s *site) setMachines(ctx context.Context, ms []*machine) error {
	for uuid := range s.registered {
		s.api.RemoveMachine(uuid)
	}
	clear(s.registered)
	var ak bytes.Buffer
	for _, m := range ms {
		s.api.AddMachine(storageName, m.uuid, apiclient.MachineInfo{UnitName: m.unit, SSHPublicKey: m.pub})
		s.registered[m.uuid] = m
		fmt.Fprintf(&ak, "command=\"%s -c %s ping %s\",no-pty,no-agent-forwarding,no-X11-forwarding,no-user-rc %s\n",
			s.bin, s.pingDir, m.uuid, m.pub)
	}
	if err := os.WriteFile(s.authKeys, ak.Bytes(), 0o600); err != nil {
		return err
	}
	if err := s.restartServe(ctx, len(ms)); err != nil {
		return err
	}
	// serve logs the refresh just before it swaps the keys in: wait until
	// the last machine's key is accepted.
	return s.waitAccepted(ctx, ms[len(ms)-1])
}

// waitAccepted waits until serve lets m authenticate.
func (s *site) waitAccepted(ctx context.Context, m *machine) error {
	signer, err := gossh.NewSignerFromKey(m.priv)
	if err != nil {
		return err
	}
	cfg := &gossh.ClientConfig{
		User:            loginUser,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), // our own server, on loopback
		Timeout:         5 * time.Second,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := gossh.Dial("tcp", s.serveAddr(), cfg)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serve does not accept machine %s: %w", m.uuid, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startSSHD starts the OpenSSH baseline with its own configuration, host
// key and pid file on 127.0.0.1:sshdPort.
func (s *site) startSSHD(ctx context.Context) error {
	if s.sshdMaxStartups == "" {
		s.sshdMaxStartups = "100"
	}
	s.authKeys = filepath.Join(s.sshdDir, "authorized_keys")
	if _, err := os.Stat(s.authKeys); err != nil {
		if err := os.WriteFile(s.authKeys, nil, 0o600); err != nil {
			return err
		}
	}
	s.sshdConfig = filepath.Join(s.sshdDir, "sshd_config")
	conf := fmt.Sprintf(`# turkubench: OpenSSH baseline. Its own port, keys and files; never the system sshd's.
ListenAddress 127.0.0.1:%d
HostKey %s
PidFile %s
AuthorizedKeysFile %s
AuthorizedPrincipalsFile none
StrictModes no
UsePAM no
PermitRootLogin forced-commands-only
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
AllowTcpForwarding remote
GatewayPorts no
X11Forwarding no
AllowAgentForwarding no
PermitTTY no
PrintMotd no
PrintLastLog no
UseDNS no
# Many agents at once must not be dropped by the default 10:30:100
# random early drop: only port collisions should fail them. (f) restores
# the default (setSSHDMaxStartups).
MaxStartups %s
# bash sources ~/.bashrc for commands run by sshd when SHLVL < 2; a
# turku-ping user has no such rc file, but root's here may be heavy
# (pyenv init: ~0.9 s). With SHLVL=1 the forced command's bash skips it.
SetEnv SHLVL=1
LogLevel ERROR
`, s.sshdPort, s.hostKeyFile, filepath.Join(s.sshdDir, "sshd.pid"), s.authKeys, s.sshdMaxStartups)
	if err := os.WriteFile(s.sshdConfig, []byte(conf), 0o600); err != nil {
		return err
	}
	if out, err := exec.Command("/usr/sbin/sshd", "-t", "-f", s.sshdConfig).CombinedOutput(); err != nil {
		return fmt.Errorf("sshd -t: %v: %s", err, out)
	}
	log, err := os.Create(filepath.Join(s.sshdDir, "sshd.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", s.sshdConfig)
	cmd.Stdout, cmd.Stderr = log, log
	done, err := s.p.start(cmd)
	if err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	s.sshd = cmd
	if err := waitListening(ctx, s.sshdAddr(), done); err != nil {
		b, _ := os.ReadFile(log.Name())
		return fmt.Errorf("sshd: %w: %s", err, b)
	}
	return nil
}

// setSSHDMaxStartups restarts sshd with MaxStartups v (sshd's default is
// 10:30:100). OpenSSH_9.2 has no PerSourceMaxStartups or
// PerSourcePenalties (both 9.8); with a newer sshd they would go here too.
func (s *site) setSSHDMaxStartups(ctx context.Context, v string) error {
	s.p.stop(s.sshd, 5*time.Second)
	s.sshdMaxStartups = v
	return s.startSSHD(ctx)
}

func (s *site) sshdAddr() string  { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.sshdPort)) }
func (s *site) serveAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.servePort)) }

// restartServe (re)starts `turku-storage serve` and waits until it has
// loaded want machines from the fake API.
func (s *site) restartServe(ctx context.Context, want int) error {
	if s.serve != nil {
		s.p.stop(s.serve, 30*time.Second)
		s.serve = nil
	}
	// The key cache would otherwise serve the previous set for a moment.
	_ = os.Remove(filepath.Join(s.oursDir, "var", "machines.json"))
	if s.forgetSources {
		_ = os.Remove(filepath.Join(s.oursDir, "var", "history", "known-sources"))
	}
	before := countInFile(s.serveLog, "refreshed machines from API")
	out, err := os.OpenFile(filepath.Join(s.oursDir, "serve.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(s.bin, "-c", s.oursDir, "serve", "--shutdown-timeout", "10s")
	cmd.Env = append(os.Environ(), s.serveEnv...)
	cmd.Stdout, cmd.Stderr = out, out
	done, err := s.p.start(cmd)
	if err != nil {
		return fmt.Errorf("start serve: %w", err)
	}
	s.serve = cmd
	deadline := time.Now().Add(60 * time.Second)
	for countInFile(s.serveLog, "refreshed machines from API") <= before {
		select {
		case <-done:
			b, _ := os.ReadFile(out.Name())
			return fmt.Errorf("serve exited: %s", b)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serve did not load its machines within 60s; see %s", s.serveLog)
		}
	}
	if !strings.Contains(lastLine(s.serveLog, "refreshed machines from API"), "machines="+strconv.Itoa(want)+" ") {
		return fmt.Errorf("serve loaded %q, want %d machines", lastLine(s.serveLog, "refreshed machines from API"), want)
	}
	return waitListening(ctx, s.serveAddr(), done)
}

func (s *site) close() {
	s.p.stopAll()
	s.api.Close()
}

// waitListening polls addr until it accepts a connection or done closes.
func waitListening(ctx context.Context, addr string, done <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after 30s", addr)
		}
		select {
		case <-done:
			return fmt.Errorf("exited before listening on %s", addr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func countInFile(path, s string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte(s))
}

func lastLine(path, s string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return lines[i]
		}
	}
	return ""
}
