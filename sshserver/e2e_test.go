package sshserver

// End-to-end tests with the real OpenSSH client and rsync daemon, run the
// way the Turku agent runs them (docs/protocol.md §5). internal/agenttest plays
// the agent.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
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
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// e2eWait bounds every wait on ssh and its output; only a hung test
// reaches it.
const e2eWait = 60 * time.Second

func requireTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	for _, tool := range []string{"ssh", "rsync"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

const (
	rsyncUser     = "turku"
	rsyncPassword = "s3cret-from-agent"
)

// agentModule is a module of an agent's rsync daemon, with the
// credentials checkinJSON sends.
func agentModule(name, path string, writable bool) agenttest.Module {
	return agenttest.Module{Name: name, Path: path, User: rsyncUser, Password: rsyncPassword, Writable: writable}
}

// setAgents makes the given machines (unit names by UUID) the only ones,
// each with a new key, and returns the keys by UUID. The authorized key
// carries the comment ssh-keygen gives it on the agent ("root@unit").
func (ts *testServer) setAgents(t *testing.T, units map[string]string) map[string]agenttest.Key {
	t.Helper()
	keys := map[string]agenttest.Key{}
	machines := map[string]apiclient.MachineInfo{}
	for uuid, unit := range units {
		keys[uuid] = agenttest.NewKey(t)
		machines[uuid] = apiclient.MachineInfo{UnitName: unit, SSHPublicKey: keys[uuid].Authorized + " root@" + unit}
	}
	ts.SetMachines(machines)
	return keys
}

// agentPing is the agent's ssh to ts with key (turku_agent/ping.py),
// trusting ts's host key, forwarding fwdPort to fwdHost:fwdPort and
// writing request as the agent's json.dumps wrote it.
func (ts *testServer) agentPing(key agenttest.Key, fwdHost string, fwdPort int, request string) agenttest.Ping {
	addr := netip.MustParseAddrPort(ts.addr) // from our own listener
	return agenttest.Ping{
		Host: addr.Addr().String(), Port: int(addr.Port()), User: testUser,
		Key: key, HostKeys: []string{AuthorizedKey(ts.hostKey)},
		ForwardPort: fwdPort, ForwardTarget: fwdHost, RequestText: request,
	}
}

// runRsync runs the rsync client as the storage unit or an operator does,
// with password in RSYNC_PASSWORD; env is from agenttest.Env.
func runRsync(ctx context.Context, t *testing.T, env []string, password string, args ...string) error {
	cmd := exec.CommandContext(ctx, "rsync", args...)
	cmd.Env = append(env, "RSYNC_PASSWORD="+password)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if len(out) > 0 {
		t.Logf("rsync %s: %s", strings.Join(args, " "), out)
	}
	return err
}

// rsyncPull is a Puller body that pulls every source with the real rsync
// client into root/<machine>/<source>/, writing Begin/End lines like the
// backup engine.
func rsyncPull(t *testing.T, root string) func(ctx context.Context, req PullRequest) error {
	env := agenttest.Env(t)
	return func(ctx context.Context, req PullRequest) error {
		for src, cred := range req.Credentials {
			req.Log.Infof("Begin: %s %s", req.Machine, src)
			dest := filepath.Join(root, req.Machine, src) + "/"
			if err := os.MkdirAll(filepath.Dir(filepath.Clean(dest)), 0o700); err != nil {
				return err
			}
			url := fmt.Sprintf("rsync://%s@%s/%s/", cred.Username, req.RsyncAddr, src)
			if err := runRsync(ctx, t, env, cred.Password, "--archive", "--numeric-ids", "--delete", url, dest); err != nil {
				return fmt.Errorf("rsync %s: %w", src, err)
			}
			req.Log.Infof("End: %s %s", req.Machine, src)
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
	agenttest.WriteTree(t, dir, files)
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
	t.Parallel()
	requireTools(t)
	ts := startServer(t, nil)
	key := ts.setAgents(t, map[string]string{uuidA: "web1"})[uuidA]
	pulled := t.TempDir()
	ts.puller.pull = rsyncPull(t, pulled)

	etc := t.TempDir()
	want := writeTree(t, etc, "web1")
	rsyncd := agenttest.StartRsyncd(t, "127.0.0.2", []agenttest.Module{agentModule("etc", etc, false)})

	res := ts.agentPing(key, rsyncd.Host, rsyncd.Port, checkinJSON(rsyncd.Port, "etc")).Start(t).Wait(t, e2eWait)
	if res.ExitCode != 0 {
		t.Fatalf("ssh exit %d", res.ExitCode)
	}
	checkTree(t, filepath.Join(pulled, uuidA, "etc"), want)
	for _, re := range []string{
		`(?m)^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} primary\] INFO: Begin: ` + uuidA + ` etc$`,
		`(?m)INFO: End: ` + uuidA + ` etc$`,
	} {
		if !regexp.MustCompile(re).MatchString(res.Stderr) {
			t.Errorf("agent stderr lacks %s:\n%s", re, res.Stderr)
		}
	}
	if res.Stdout != "" {
		t.Errorf("agent stdout %q, want nothing: the log goes to stderr", res.Stdout)
	}
	// The pull went to the agent's daemon, as the module's user.
	rsyncd.Log().WaitFor(t, "rsync on etc/ from "+rsyncUser+"@", 1, e2eWait)
}

func TestE2ERestore(t *testing.T) {
	t.Parallel()
	requireTools(t)
	ts := startServer(t, nil)
	key := ts.setAgents(t, map[string]string{uuidA: "web1"})[uuidA]

	restoreDir := t.TempDir()
	rsyncd := agenttest.StartRsyncd(t, "127.0.0.2", []agenttest.Module{agentModule("turku-restore", restoreDir, true)})
	ssh := ts.agentPing(key, rsyncd.Host, rsyncd.Port,
		fmt.Sprintf(`{"verbose": true, "action": "restore", "port": %d}`+"\n.\n", rsyncd.Port)).Start(t)

	// Fails at once if ssh exits without it.
	m := ssh.Stderr().WaitForLine(t, regexp.MustCompile(`INFO: Restore mode active on port (\d+)\.  Good luck\.$`), e2eWait)
	listen, _ := strconv.Atoi(m[1])
	if listen != rsyncd.Port {
		t.Fatalf("restore on port %d, agent asked %d", listen, rsyncd.Port)
	}

	// The operator, on the storage unit (docs/protocol.md §5.4).
	snapshot := t.TempDir()
	want := writeTree(t, snapshot, "snapshot")
	if err := runRsync(context.Background(), t, agenttest.Env(t), rsyncPassword, "-avz", "--numeric-ids",
		snapshot+"/", fmt.Sprintf("rsync://%s@127.0.0.1:%d/turku-restore/", rsyncUser, listen)); err != nil {
		t.Fatalf("operator rsync: %v", err)
	}
	checkTree(t, restoreDir, want)

	ssh.CloseStdin() // the agent leaves restore mode
	res := ssh.Wait(t, e2eWait)
	if res.ExitCode != 0 {
		t.Errorf("ssh exit %d", res.ExitCode)
	}
	if !strings.Contains(res.Stderr, "INFO: Restore mode finished") {
		t.Errorf("no Restore mode finished line")
	}
}

// TestE2EUnknownKey also pins what OpenSSH negotiates with us.
func TestE2EUnknownKey(t *testing.T) {
	t.Parallel()
	requireTools(t)
	ts := startServer(t, nil)
	ping := ts.agentPing(agenttest.NewKey(t), "127.0.0.2", 50000, checkinJSON(50000, "etc"))
	ping.ExtraArgs = []string{"-vvv"}
	res := ping.Start(t).Wait(t, e2eWait)
	if res.ExitCode != 255 {
		t.Errorf("ssh exit %d, want 255", res.ExitCode)
	}
	for _, want := range []string{
		"Permission denied (publickey)",
		"Host '127.0.0.1' is known and matches the ED25519 host key",
		"will use strict KEX ordering",
		"kex: algorithm: curve25519-sha256",
		"kex: server->client cipher: aes128-gcm@openssh.com",
		"kex: client->server cipher: aes128-gcm@openssh.com",
	} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("ssh stderr lacks %q", want)
		}
	}
	if n := len(ts.puller.machines()); n != 0 {
		t.Errorf("%d checkins ran", n)
	}
}

// TestE2ELocalForwardRefused: ssh -L gets nothing through.
func TestE2ELocalForwardRefused(t *testing.T) {
	t.Parallel()
	requireTools(t)
	ts := startServer(t, nil)
	key := ts.setAgents(t, map[string]string{uuidA: "web1"})[uuidA]

	local := net.JoinHostPort("127.0.0.1", strconv.Itoa(agenttest.FreePort(t, "127.0.0.1")))
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
	ping := ts.agentPing(key, "127.0.0.2", 50000, checkinJSON(50000, "etc"))
	ping.ExtraArgs = []string{"-L", local + ":" + ts.addr}
	res := ping.Start(t).Wait(t, e2eWait)
	if res.ExitCode != 0 {
		t.Errorf("ssh exit %d", res.ExitCode)
	}
	if !strings.Contains(res.Stderr, "administratively prohibited") {
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
	t.Parallel()
	requireTools(t)
	ts := startServer(t, nil)
	hosts := map[string]string{uuidA: "127.0.0.2", uuidB: "127.0.0.3"}
	units := map[string]string{uuidA: "web1", uuidB: "db1"}
	keys := ts.setAgents(t, units)
	trees := map[string]map[string][]byte{}
	modules := map[string][]agenttest.Module{}
	for uuid, unit := range units {
		dir := t.TempDir()
		trees[uuid] = writeTree(t, dir, unit)
		modules[hosts[uuid]] = []agenttest.Module{agentModule("etc", dir, false)}
	}
	daemons := agenttest.StartRsyncdPerHost(t, modules)
	port := daemons[hosts[uuidA]].Port
	if other := daemons[hosts[uuidB]].Port; other != port {
		t.Fatalf("daemons on ports %d and %d, want one port", port, other)
	}

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
	var sessions []*agenttest.Session
	for uuid := range units {
		sessions = append(sessions, ts.agentPing(keys[uuid], hosts[uuid], port, checkinJSON(port, "etc")).Start(t))
	}
	for _, s := range sessions {
		if res := s.Wait(t, e2eWait); res.ExitCode != 0 {
			t.Errorf("ssh exit %d", res.ExitCode)
		}
	}
	for uuid := range units {
		checkTree(t, filepath.Join(pulled, uuid, "etc"), trees[uuid])
	}
}
