package sshserver

// End-to-end tests with the real OpenSSH client and rsync daemon, run the
// way the Turku agent runs them (PROTOCOL.md §3).

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
)

func requireTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	for _, tool := range []string{"ssh", "ssh-keygen", "rsync"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// logLines is an io.Writer that sends each line of a subprocess's output to
// t.Log, keeps them all, and lets a test wait for one.
type logLines struct {
	t      *testing.T
	prefix string

	mu      sync.Mutex // guards the fields below
	partial []byte
	lines   []string
	changed chan struct{} // closed and replaced on every new line
	done    bool          // the test is over: stop logging
}

func newLogLines(t *testing.T, prefix string) *logLines {
	l := &logLines{t: t, prefix: prefix, changed: make(chan struct{})}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		l.lines = append(l.lines, line)
		if !l.done {
			l.t.Logf("%s: %s", l.prefix, line)
		}
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n") + string(l.partial)
}

// waitFor returns the first submatches of re in a line, or nil if stop
// closes first.
func (l *logLines) waitFor(re *regexp.Regexp, stop <-chan struct{}) []string {
	seen := 0
	for {
		l.mu.Lock()
		lines, changed := l.lines[seen:], l.changed
		seen = len(l.lines)
		l.mu.Unlock()
		for _, line := range lines {
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		}
		select {
		case <-changed:
		case <-stop:
			return nil
		}
	}
}

// proc is a subprocess killed and reaped at the end of the test.
type proc struct {
	cmd    *exec.Cmd
	out    *logLines
	stdin  io.WriteCloser
	exited chan struct{}
	err    error // valid once exited is closed
}

func startProc(t *testing.T, name string, stdin bool, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	p := &proc{cmd: cmd, out: newLogLines(t, name), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.Env = env
	if stdin {
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.stdin = w
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		p.out.Write([]byte(fmt.Sprintf("[exited at %s: %v]\n", time.Now().Format("15:04:05.000"), p.err)))
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait returns the exit code once the process ended.
func (p *proc) wait() int {
	<-p.exited
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

// cleanEnv is the environment for ssh and rsync: no agent socket, and a
// HOME of our own so nothing of the user's ~/.ssh is read or written.
func cleanEnv(t *testing.T, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SSH_AUTH_SOCK=") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "RSYNC_") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "HOME="+t.TempDir()), extra...)
}

// rsyncModule is one module of an agent's rsync daemon.
type rsyncModule struct {
	name     string
	path     string
	readOnly bool
}

const (
	rsyncUser     = "turku"
	rsyncPassword = "s3cret-from-agent"
)

// startRsyncd runs the agent's rsync daemon on ip:port, like turku-agent's
// turku-agent-rsyncd. It reports false if the port could not be bound.
func startRsyncd(t *testing.T, ip string, port int, modules ...rsyncModule) bool {
	t.Helper()
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if err := os.WriteFile(secrets, []byte(rsyncUser+":"+rsyncPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	conf.WriteString("use chroot = no\n")
	if os.Getuid() == 0 { // else the daemon would switch to nobody
		fmt.Fprintf(&conf, "uid = 0\ngid = 0\n")
	}
	for _, m := range modules {
		fmt.Fprintf(&conf, "[%s]\n  path = %s\n  read only = %v\n  auth users = %s\n  secrets file = %s\n",
			m.name, m.path, m.readOnly, rsyncUser, secrets)
	}
	confPath := filepath.Join(dir, "rsyncd.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "rsyncd "+ip, false, cleanEnv(t), "rsync", "--daemon", "--no-detach",
		"--config="+confPath, "--address="+ip, "--port="+strconv.Itoa(port), "--log-file=/dev/stderr")
	// The daemon says nothing once bound, so probe until it answers or
	// exits (bind failure). This waits on another process, not on ours.
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return true
		}
		select {
		case <-p.exited:
			return false
		case <-time.After(delay):
		}
	}
}

// agentPort returns a port free on all the given loopback addresses, with an
// rsync daemon on each ip serving modules[ip]; it retries on bind races.
func agentPort(t *testing.T, modules map[string][]rsyncModule) int {
	t.Helper()
	for range 10 {
		ln, err := net.Listen("tcp", "127.0.0.2:0") // any ip of ours will do to pick
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ok := true
		for ip, mods := range modules {
			if !startRsyncd(t, ip, port, mods...) {
				ok = false
				break
			}
		}
		if ok {
			return port
		}
		t.Logf("port %d taken, trying another", port)
	}
	t.Fatal("no free agent port")
	return 0
}

// e2eAgent is one machine: its OpenSSH key pair.
type e2eAgent struct {
	name string
	key  string // private key file
	pub  string // authorized_keys line
}

func newE2EAgent(t *testing.T, name string) *e2eAgent {
	t.Helper()
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "root@"+name, "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return &e2eAgent{name: name, key: key, pub: strings.TrimSpace(string(pub))}
}

// ssh runs the agent's ssh command line (turku_agent/ping.py), with
// IdentitiesOnly and -F none so that nothing of this host leaks in.
func (a *e2eAgent) ssh(t *testing.T, ts *testServer, extra []string, request string) *proc {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte("127.0.0.1 "+AuthorizedKey(ts.hostKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ts.addr)
	args := []string{"ssh", "-F", "none", "-T", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=" + kh,
		"-o", "StrictHostKeyChecking=yes", "-o", "CheckHostIP=no", "-o", "IdentitiesOnly=yes", "-i", a.key}
	args = append(args, extra...)
	args = append(args, "-p", port, "-l", testUser, "127.0.0.1", "turku-ping-remote")
	p := startProc(t, "ssh "+a.name, true, cleanEnv(t), args...)
	if request != "" {
		if _, err := io.WriteString(p.stdin, request); err != nil {
			t.Fatal(err)
		}
	}
	// stdin stays open, as the agent keeps it, until the test ends.
	t.Cleanup(func() { p.stdin.Close() })
	return p
}

// rsyncPull is a Puller body that pulls every source with the real rsync
// client into root/<machine>/<source>/, writing Begin/End lines like the
// backup engine.
func rsyncPull(t *testing.T, root string) func(ctx context.Context, req PullRequest) error {
	return func(ctx context.Context, req PullRequest) error {
		for src, cred := range req.Credentials {
			req.Log.Info("Begin: %s %s", req.Machine, src)
			dest := filepath.Join(root, req.Machine, src) + "/"
			if err := os.MkdirAll(filepath.Dir(filepath.Clean(dest)), 0o700); err != nil {
				return err
			}
			cmd := exec.CommandContext(ctx, "rsync", "--archive", "--numeric-ids", "--delete",
				fmt.Sprintf("rsync://%s@%s/%s/", cred.Username, req.RsyncAddr, src), dest)
			cmd.Env = cleanEnv(t, "RSYNC_PASSWORD="+cred.Password)
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			if len(out) > 0 {
				t.Logf("rsync pull %s: %s", src, out)
			}
			if err != nil {
				return fmt.Errorf("rsync %s: %w", src, err)
			}
			req.Log.Info("End: %s %s", req.Machine, src)
		}
		return nil
	}
}

// writeTree fills dir with a few files, one big and random.
func writeTree(t *testing.T, dir, tag string) map[string][]byte {
	t.Helper()
	big := make([]byte, 3<<20)
	rand.Read(big)
	files := map[string][]byte{
		"hostname":       []byte(tag + "\n"),
		"sub/config":     []byte("owner = " + tag + "\n"),
		"sub/random.bin": big,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func checkTree(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes differ from the agent's %d", name, len(got), len(data))
		}
	}
}

func checkinJSON(port int, sources ...string) string {
	var parts []string
	for _, s := range sources {
		parts = append(parts, fmt.Sprintf(`%q: {"username": %q, "password": %q}`, s, rsyncUser, rsyncPassword))
	}
	return fmt.Sprintf(`{"verbose": true, "action": "checkin", "port": %d, "sources": {%s}}`+"\n.\n", port, strings.Join(parts, ", "))
}

func TestE2ECheckin(t *testing.T) {
	requireTools(t)
	ts := startServer(t, nil)
	agent := newE2EAgent(t, "web1")
	ts.SetMachines(map[string]apiclient.MachineInfo{uuidA: {UnitName: "web1", SSHPublicKey: agent.pub}})
	pulled := t.TempDir()
	ts.puller.pull = rsyncPull(t, pulled)

	etc := t.TempDir()
	want := writeTree(t, etc, "web1")
	port := agentPort(t, map[string][]rsyncModule{"127.0.0.2": {{name: "etc", path: etc, readOnly: true}}})
	fwd := fmt.Sprintf("%d:127.0.0.2:%d", port, port)

	ssh := agent.ssh(t, ts, []string{"-R", fwd}, checkinJSON(port, "etc"))
	if code := ssh.wait(); code != 0 {
		t.Fatalf("ssh exit %d", code)
	}
	checkTree(t, filepath.Join(pulled, uuidA, "etc"), want)
	out := ssh.out.String()
	for _, re := range []string{
		`(?m)^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} primary\] INFO: Begin: ` + uuidA + ` etc$`,
		`(?m)INFO: End: ` + uuidA + ` etc$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("agent output lacks %s:\n%s", re, out)
		}
	}
}

func TestE2ERestore(t *testing.T) {
	requireTools(t)
	ts := startServer(t, nil)
	agent := newE2EAgent(t, "web1")
	ts.SetMachines(map[string]apiclient.MachineInfo{uuidA: {UnitName: "web1", SSHPublicKey: agent.pub}})

	restoreDir := t.TempDir()
	port := agentPort(t, map[string][]rsyncModule{"127.0.0.2": {{name: "turku-restore", path: restoreDir}}})
	fwd := fmt.Sprintf("%d:127.0.0.2:%d", port, port)
	ssh := agent.ssh(t, ts, []string{"-R", fwd},
		fmt.Sprintf(`{"verbose": true, "action": "restore", "port": %d}`+"\n.\n", port))

	m := ssh.out.waitFor(regexp.MustCompile(`INFO: Restore mode active on port (\d+)\.  Good luck\.$`), ssh.exited)
	if m == nil {
		t.Fatalf("ssh exited without restore mode")
	}
	listen, _ := strconv.Atoi(m[1])
	if listen != port {
		t.Logf("restore port %d was taken; server uses %d", port, listen)
	}

	// The operator, on the storage unit (PROTOCOL.md §3.2).
	snapshot := t.TempDir()
	want := writeTree(t, snapshot, "snapshot")
	op := startProc(t, "operator rsync", false, cleanEnv(t, "RSYNC_PASSWORD="+rsyncPassword),
		"rsync", "-avz", "--numeric-ids", snapshot+"/", fmt.Sprintf("rsync://%s@127.0.0.1:%d/turku-restore/", rsyncUser, listen))
	if code := op.wait(); code != 0 {
		t.Fatalf("operator rsync exit %d", code)
	}
	checkTree(t, restoreDir, want)

	ssh.stdin.Close() // the agent leaves restore mode
	if code := ssh.wait(); code != 0 {
		t.Errorf("ssh exit %d", code)
	}
	if !strings.Contains(ssh.out.String(), "INFO: Restore mode finished") {
		t.Errorf("no Restore mode finished line")
	}
}

// TestE2EUnknownKey also pins what OpenSSH negotiates with us.
func TestE2EUnknownKey(t *testing.T) {
	requireTools(t)
	ts := startServer(t, nil)
	stranger := newE2EAgent(t, "stranger")
	ssh := stranger.ssh(t, ts, []string{"-vvv", "-R", "50000:127.0.0.2:50000"}, checkinJSON(50000, "etc"))
	if code := ssh.wait(); code != 255 {
		t.Errorf("ssh exit %d, want 255", code)
	}
	out := ssh.out.String()
	for _, want := range []string{
		"Permission denied (publickey)",
		"Host '127.0.0.1' is known and matches the ED25519 host key",
		"will use strict KEX ordering",
		"kex: algorithm: curve25519-sha256",
		"kex: server->client cipher: aes128-gcm@openssh.com",
		"kex: client->server cipher: aes128-gcm@openssh.com",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ssh output lacks %q", want)
		}
	}
	if n := len(ts.puller.machines()); n != 0 {
		t.Errorf("%d checkins ran", n)
	}
}

// TestE2ELocalForwardRefused: ssh -L gets nothing through.
func TestE2ELocalForwardRefused(t *testing.T) {
	requireTools(t)
	ts := startServer(t, nil)
	agent := newE2EAgent(t, "web1")
	ts.SetMachines(map[string]apiclient.MachineInfo{uuidA: {UnitName: "web1", SSHPublicKey: agent.pub}})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local := ln.Addr().String()
	ln.Close()
	_, sshPort, _ := net.SplitHostPort(ts.addr)
	// OpenSSH sets up -L before it opens the session, so the listener is
	// there once the checkin runs.
	ts.puller.pull = func(ctx context.Context, req PullRequest) error {
		c, err := net.Dial("tcp", local)
		if err != nil {
			return fmt.Errorf("ssh -L listener: %w", err)
		}
		defer c.Close()
		got, _ := io.ReadAll(c)
		if len(got) > 0 {
			return fmt.Errorf("got %q through ssh -L", got)
		}
		return nil
	}
	ssh := agent.ssh(t, ts, []string{"-L", local + ":127.0.0.1:" + sshPort, "-R", "50000:127.0.0.2:50000"}, checkinJSON(50000, "etc"))
	if code := ssh.wait(); code != 0 {
		t.Errorf("ssh exit %d", code)
	}
	if !strings.Contains(ssh.out.String(), "administratively prohibited") {
		t.Errorf("ssh did not report the refusal")
	}
	if n := len(ts.puller.machines()); n != 1 {
		t.Errorf("%d checkins, want 1", n)
	}
}

// TestE2ETwoAgentsSamePort: two agents picked the same PORT and back up at
// the same time; each pull must get its own agent's data. Their daemons
// listen on 127.0.0.2:PORT and 127.0.0.3:PORT, as two hosts' would.
func TestE2ETwoAgentsSamePort(t *testing.T) {
	requireTools(t)
	ts := startServer(t, nil)
	agents := map[string]*e2eAgent{uuidA: newE2EAgent(t, "web1"), uuidB: newE2EAgent(t, "db1")}
	ips := map[string]string{uuidA: "127.0.0.2", uuidB: "127.0.0.3"}
	machines := map[string]apiclient.MachineInfo{}
	trees := map[string]map[string][]byte{}
	modules := map[string][]rsyncModule{}
	for uuid, a := range agents {
		machines[uuid] = apiclient.MachineInfo{UnitName: a.name, SSHPublicKey: a.pub}
		dir := t.TempDir()
		trees[uuid] = writeTree(t, dir, a.name)
		modules[ips[uuid]] = []rsyncModule{{name: "etc", path: dir, readOnly: true}}
	}
	ts.SetMachines(machines)
	port := agentPort(t, modules)

	// Both pulls must be under way at once: each waits for the other.
	pulled := t.TempDir()
	pull := rsyncPull(t, pulled)
	var barrier sync.WaitGroup
	barrier.Add(2)
	ts.puller.pull = func(ctx context.Context, req PullRequest) error {
		barrier.Done()
		barrier.Wait()
		return pull(ctx, req)
	}
	var procs []*proc
	for uuid, a := range agents {
		fwd := fmt.Sprintf("%d:%s:%d", port, ips[uuid], port)
		procs = append(procs, a.ssh(t, ts, []string{"-R", fwd}, checkinJSON(port, "etc")))
	}
	for _, p := range procs {
		if code := p.wait(); code != 0 {
			t.Errorf("ssh exit %d", code)
		}
	}
	for uuid := range agents {
		checkTree(t, filepath.Join(pulled, uuid, "etc"), trees[uuid])
	}
}
