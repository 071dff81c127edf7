package backup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/agentproto"
	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/internal/testlog"
)

// fakeAgent plays the Turku agent's rsync daemon: modules with "auth
// users" and a secrets file, as turku-agent writes them. It listens on a
// kernel-chosen loopback port and hands each connection to "rsync
// --daemon" in inetd mode (rsync serves stdin when it is a socket), so no
// port is guessed and no readiness polling is needed. Traffic passes
// through a proxy the test can stall to freeze a transfer midway.
type fakeAgent struct {
	t    *testing.T
	ln   net.Listener
	conf string

	stallAfter int64         // >0: stop daemon→client traffic after this many bytes
	stalled    chan struct{} // closed when the stall begins
	release    chan struct{} // closed at cleanup, ends a stall

	mu    sync.Mutex // guards conns and procs
	conns []net.Conn
	procs []*exec.Cmd
	wg    sync.WaitGroup
}

type agentModule struct{ name, path, user, password string }

func newFakeAgent(t *testing.T, modules ...agentModule) *fakeAgent {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed")
	}
	dir := t.TempDir()
	secrets := filepath.Join(dir, "rsyncd.secrets")
	conf := fmt.Sprintf("log file = %s\nuid = %d\ngid = %d\nlist = false\nuse chroot = no\nreverse lookup = no\n\n",
		filepath.Join(dir, "rsyncd.log"), os.Getuid(), os.Getgid())
	var sec strings.Builder
	for _, m := range modules {
		conf += fmt.Sprintf("[%s]\n    path = %s\n    auth users = %s\n    secrets file = %s\n    read only = true\n\n", m.name, m.path, m.user, secrets)
		fmt.Fprintf(&sec, "%s:%s\n", m.user, m.password)
	}
	if err := os.WriteFile(secrets, []byte(sec.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &fakeAgent{t: t, conf: filepath.Join(dir, "rsyncd.conf"), stalled: make(chan struct{}), release: make(chan struct{})}
	if err := os.WriteFile(a.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.ln = ln
	a.wg.Go(a.serve)
	t.Cleanup(a.close)
	return a
}

func (a *fakeAgent) addr() string { return a.ln.Addr().String() }

func (a *fakeAgent) serve() {
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		if err := a.handle(c); err != nil {
			a.t.Errorf("fake agent: %v", err)
			c.Close()
		}
	}
}

// handle starts an inetd-mode daemon on one end of a fresh loopback TCP
// pair and proxies the client to the other end.
func (a *fakeAgent) handle(client net.Conn) error {
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer pl.Close()
	near, err := net.Dial("tcp", pl.Addr().String())
	if err != nil {
		return err
	}
	far, err := pl.Accept()
	if err != nil {
		near.Close()
		return err
	}
	ff, err := far.(*net.TCPConn).File()
	far.Close()
	if err != nil {
		near.Close()
		return err
	}
	cmd := exec.Command("rsync", "--daemon", "--config="+a.conf)
	cmd.Stdin, cmd.Stdout = ff, ff
	cmd.Stderr = testlog.Writer(a.t)
	err = cmd.Start()
	ff.Close()
	if err != nil {
		near.Close()
		return err
	}
	a.mu.Lock()
	a.conns = append(a.conns, client, near)
	a.procs = append(a.procs, cmd)
	a.mu.Unlock()
	a.wg.Go(func() {
		_, _ = io.Copy(near, client)
		near.(*net.TCPConn).CloseWrite()
	})
	a.wg.Go(func() {
		a.copyDown(client, near)
		client.Close()
	})
	a.wg.Go(func() {
		if err := cmd.Wait(); err != nil {
			a.t.Logf("rsync daemon: %v", err)
		}
	})
	return nil
}

// copyDown forwards daemon output to the client, stalling if asked.
func (a *fakeAgent) copyDown(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if a.stallAfter > 0 && total+int64(n) > a.stallAfter {
				_, _ = dst.Write(buf[:a.stallAfter-total])
				close(a.stalled)
				<-a.release
				return
			}
			total += int64(n)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (a *fakeAgent) close() {
	a.ln.Close()
	close(a.release)
	a.mu.Lock()
	for _, c := range a.conns {
		c.Close()
	}
	for _, p := range a.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// integrationEnv is a test engine using the real rsync against a fake agent
// serving src as module "etc".
func integrationEnv(t *testing.T, src apiclient.Source, files map[string]string) (*testEnv, *fakeAgent, string) {
	t.Helper()
	srcDir := filepath.Join(t.TempDir(), "etc")
	agenttest.WriteTree(t, srcDir, files)
	agent := newFakeAgent(t, agentModule{"etc", srcDir, "user-etc", "pw-etc"})
	env := newTestEnv(t, map[string]apiclient.Source{"etc": src}, func(o *Options) { o.Now = nil })
	return env, agent, srcDir
}

func (env *testEnv) pull(t *testing.T, ctx context.Context, agent *fakeAgent, c map[string]agentproto.Credential) error {
	t.Helper()
	req := env.request(c)
	req.RsyncAddr = agent.addr()
	return env.e.Pull(ctx, req)
}

// wantPullSucceeds pulls source etc from agent afresh and checks that it
// succeeded and reported success; when names the moment in the failure.
func (env *testEnv) wantPullSucceeds(t *testing.T, agent *fakeAgent, when string) {
	t.Helper()
	env.api.reset()
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatalf("pull %s: %v", when, err)
	}
	if rep := env.api.onlyReport(t); !rep.Success {
		t.Errorf("report %+v", rep)
	}
}

func TestIntegrationLinkDest(t *testing.T) {
	t.Parallel()
	src := apiclient.Source{Filter: []string{"- *.tmp"}, Exclude: []string{"cache/"}, PreserveHardLinks: true, Retention: "last 5 snapshots"}
	env, agent, srcDir := integrationEnv(t, src, map[string]string{
		"same.txt": "unchanged", "changed.txt": "v1", "sub/deep.txt": "deep", "x.tmp": "filtered", "cache/c": "excluded", "hl1": "linked",
	})
	if err := os.Link(filepath.Join(srcDir, "hl1"), filepath.Join(srcDir, "hl2")); err != nil {
		t.Fatal(err)
	}
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatalf("first pull: %v", err)
	}
	a := env.api.onlyReport(t)
	agenttest.WriteTree(t, srcDir, map[string]string{"changed.txt": "version 2"})
	env.api.reset()
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatalf("second pull: %v", err)
	}
	b := env.api.onlyReport(t)
	if !strings.HasPrefix(b.Summary, "Base snapshot: "+a.Snapshot+"\nTransfer: 7 files (") {
		t.Errorf("summary %q", b.Summary)
	}
	snapA := filepath.Join(env.machineDir(), "etc.snapshots", a.Snapshot)
	snapB := filepath.Join(env.machineDir(), "etc.snapshots", b.Snapshot)
	if agenttest.Inode(t, filepath.Join(snapA, "same.txt")) != agenttest.Inode(t, filepath.Join(snapB, "same.txt")) {
		t.Error("unchanged file not shared between snapshots")
	}
	if agenttest.Inode(t, filepath.Join(snapA, "changed.txt")) == agenttest.Inode(t, filepath.Join(snapB, "changed.txt")) {
		t.Error("changed file shares the old snapshot's inode")
	}
	if got := readFile(t, filepath.Join(snapB, "changed.txt")); got != "version 2" {
		t.Errorf("changed.txt = %q", got)
	}
	if got := readFile(t, filepath.Join(snapA, "changed.txt")); got != "v1" {
		t.Errorf("old snapshot changed: %q", got)
	}
	if agenttest.Inode(t, filepath.Join(snapB, "hl1")) != agenttest.Inode(t, filepath.Join(snapB, "hl2")) {
		t.Error("--hard-links: hard link not preserved")
	}
	for _, gone := range []string{"x.tmp", "cache"} {
		if _, err := os.Stat(filepath.Join(snapB, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s transferred despite filter/exclude: %v", gone, err)
		}
	}
	if got := readFile(t, filepath.Join(snapB, "sub", "deep.txt")); got != "deep" {
		t.Errorf("sub/deep.txt = %q", got)
	}
}

func TestIntegrationNoneModeInPlace(t *testing.T) {
	t.Parallel()
	env, agent, srcDir := integrationEnv(t, apiclient.Source{LargeModifyingFiles: true}, map[string]string{"db": "aaaaaaaa"})
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(env.machineDir(), "etc", "db")
	before := agenttest.Inode(t, work)
	// Same size, newer mtime: rsync must rewrite the file in place.
	agenttest.WriteTree(t, srcDir, map[string]string{"db": "bbbbbbbb"})
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(srcDir, "db"), future, future); err != nil {
		t.Fatal(err)
	}
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, work); got != "bbbbbbbb" {
		t.Errorf("content %q", got)
	}
	if after := agenttest.Inode(t, work); after != before {
		t.Errorf("inode %d -> %d: not updated in place", before, after)
	}
	if _, err := os.Stat(filepath.Join(env.machineDir(), "etc.snapshots")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("none mode made a snapshot directory: %v", err)
	}
}

func TestIntegrationWrongPassword(t *testing.T) {
	t.Parallel()
	env, agent, _ := integrationEnv(t, apiclient.Source{}, map[string]string{"f": "x"})
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatal(err)
	}
	good := env.api.onlyReport(t).Snapshot
	env.api.reset()
	err := env.pull(t, t.Context(), agent, map[string]agentproto.Credential{"etc": {Username: "user-etc", Password: "wrong"}})
	if err == nil {
		t.Fatal("pull with a wrong password succeeded")
	}
	t.Logf("pull with a wrong password: %v", err) // says why, should no report follow
	rep := env.api.onlyReport(t)
	if rep.Success || !strings.HasPrefix(rep.Summary, "rsync exited with return code 5\n") || !strings.Contains(rep.Summary, "auth failed") {
		t.Errorf("report %+v", rep)
	}
	snaps, _ := ListSnapshots(env.machineDir(), "etc", time.UTC)
	if len(snaps) != 1 || snaps[0].dirName() != good || !snaps[0].Latest {
		t.Errorf("snapshots after failure: %+v", snaps)
	}
	if fi, err := os.Stat(filepath.Join(env.machineDir(), "etc")); err != nil || !fi.IsDir() {
		t.Errorf("working tree not kept: %v", err)
	}
}

func TestIntegrationCancelMidTransfer(t *testing.T) {
	t.Parallel()
	big := make([]byte, 8<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	env, agent, srcDir := integrationEnv(t, apiclient.Source{}, map[string]string{"small": "s"})
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatal(err)
	}
	good := env.api.onlyReport(t).Snapshot
	env.api.reset()
	agenttest.WriteTree(t, srcDir, map[string]string{"big": string(big)})
	agent.stallAfter = 1 << 20

	ctx, cancel := context.WithCancelCause(t.Context())
	done := make(chan error, 1)
	go func() { done <- env.pull(t, ctx, agent, creds("etc")) }()
	<-agent.stalled
	cancel(errors.New("session closed"))
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "session closed") {
		t.Fatalf("Pull: %v", err)
	}
	rep := env.api.onlyReport(t)
	if rep.Success || rep.Snapshot != "" || !strings.Contains(rep.Summary, "session closed") {
		t.Errorf("report %+v", rep)
	}
	snaps, _ := ListSnapshots(env.machineDir(), "etc", time.UTC)
	if len(snaps) != 1 || snaps[0].dirName() != good || !snaps[0].Latest {
		t.Errorf("snapshots after cancel: %+v", snaps)
	}
	if got := readFile(t, filepath.Join(env.machineDir(), "etc", "small")); got != "s" {
		t.Errorf("working tree not kept: %q", got)
	}
	if !strings.Contains(env.agent.String(), "ERROR: Source etc: backup interrupted") {
		t.Errorf("session log:\n%s", env.agent.String())
	}
}

// TestIntegrationReusesWorkingTree simulates a crash after rsync finished
// but before the rename: the next run must pick the working tree up as it
// is, not transfer it again.
func TestIntegrationReusesWorkingTree(t *testing.T) {
	t.Parallel()
	env, agent, srcDir := integrationEnv(t, apiclient.Source{}, map[string]string{"a": "aaa", "b/c": "ccc"})
	mdir := env.machineDir()
	if err := os.MkdirAll(filepath.Join(env.varDir, "machines"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mdir, filepath.Join(env.varDir, "machines", testUUID)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(mdir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("rsync", "-a", srcDir+"/", filepath.Join(mdir, "etc")+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("rsync: %v\n%s", err, out)
	}
	before := agenttest.Inode(t, filepath.Join(mdir, "etc", "b", "c"))
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatal(err)
	}
	rep := env.api.onlyReport(t)
	if after := agenttest.Inode(t, filepath.Join(mdir, "etc.snapshots", rep.Snapshot, "b", "c")); after != before {
		t.Errorf("working tree file re-transferred: inode %d -> %d", before, after)
	}
	if _, err := os.Stat(filepath.Join(mdir, "etc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("working tree left after success: %v", err)
	}
}
