package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// treeState records every entry under root (mode, size, mtime, link
// target) to show that nothing changed.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link, _ := os.Readlink(p)
		out[p] = fmt.Sprintf("%v %d %d %s", fi.Mode(), fi.Size(), fi.ModTime().UnixNano(), link)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// startRestoreMode runs the agent's `turku-agent-ping --restore`: a
// writable turku-restore module with a per-session login, and the ssh
// session in restore mode. It returns once the storage unit said
// "Restore mode active".
func startRestoreMode(t *testing.T, d *daemonUnderTest, key agenttest.Key, hostKeys []string, dir, user, pass string) *agenttest.Session {
	t.Helper()
	rsyncd := agenttest.StartRsyncd(t, "127.0.0.2", []agenttest.Module{{Name: "turku-restore", Path: dir, User: user, Password: pass, Writable: true}})
	sess := agenttest.Ping{
		Host: "127.0.0.1", Port: d.ssh.(*net.TCPAddr).Port, User: "turku-ping",
		Key: key, HostKeys: hostKeys, ForwardPort: rsyncd.Port, ForwardTarget: rsyncd.Host,
		Request: map[string]any{"verbose": true, "action": "restore", "port": rsyncd.Port},
	}.Start(t)
	sess.Stderr().WaitForLine(t, regexp.MustCompile(`Restore mode active on port (\d+)`), waitLong)
	return sess
}

func TestRestore(t *testing.T) {
	api, s := newAPISite(t, nil)
	// The agent backs up a link to a directory of the storage unit's own
	// (as a hostile agent would), hoping a restore of a path through it
	// sends the storage unit's files.
	private := t.TempDir()
	os.WriteFile(filepath.Join(private, "secret.key"), []byte("storage unit's secret\n"), 0o600)
	files := map[string]string{"hosts": "127.0.0.1 localhost\n", "sub/app.conf": "x=1\n", "sub/deep/more": "y\n"}
	a := newAgent(t, api, machineUUID, "web1", files)
	if err := os.Symlink(private, filepath.Join(a.data, "escape")); err != nil {
		t.Fatal(err)
	}
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s)
	if res := a.ping(t, d, hostKeys).Wait(t, waitLong); res.ExitCode != 0 {
		t.Fatalf("backup: ssh exit %d", res.ExitCode)
	}
	d.log.WaitFor(t, `msg="report delivered"`, 1, waitLong) // in the background
	reports := api.Reports()
	if len(reports) != 1 || !reports[0].Success {
		t.Fatalf("reports %+v", reports)
	}
	snapshot := reports[0].Snapshot
	storage := treeState(t, s.volume)
	ctx := context.Background()

	// Shell completion offers what is on disk.
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"restore", ""}, []string{machineUUID, "web1"}},
		{[]string{"restore", "we"}, []string{"web1"}},
		{[]string{"restore", "web1", ""}, []string{"etc"}},
		{[]string{"restore", "web1", "etc", ""}, []string{snapshot, "latest"}},
		{[]string{"snapshots", machineUUID, ""}, []string{"etc"}},
	} {
		r := run(t, ctx, nil, append([]string{"-c", s.dir, "__complete"}, tt.args...)...)
		got := strings.Split(strings.TrimSpace(r.stdout), "\n")
		got = got[:len(got)-1] // the directive line
		if !cmp.Equal(got, tt.want) {
			t.Errorf("complete %q: got %q, want %q", tt.args, got, tt.want)
		}
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("restore-pass\n"), 0o600)
	restore := func(args ...string) runResult {
		return run(t, ctx, nil, append([]string{"-c", s.dir, "restore"}, args...)...)
	}

	// No restore session, and no waiting for one.
	r := restore("web1", "etc", "--wait", "0", "--user", "restore-user", "--password-file", pwFile)
	if r.code != exitNoRestoreSession || !strings.Contains(r.stderr, "turku-agent-ping --restore") {
		t.Errorf("no session: exit %d, stderr %q", r.code, r.stderr)
	}

	// restore starts first and waits; the agent enters restore mode.
	restoreDir := t.TempDir()
	var out, errOut agenttest.Output
	done := make(chan int, 1)
	go func() {
		code := execute(ctx, &globals{stdout: &out, stderr: &errOut}, nil, "-c", s.dir, "restore", machineUUID, "etc", "--wait", "1m", "--user", "restore-user", "--password-file", pwFile)
		errOut.Close() // a wait for the waiting line fails at once
		done <- code
	}()
	errOut.WaitForLine(t, regexp.MustCompile(`no restore session yet\. Run "turku-agent-ping --restore" on it; waiting up to 1m0s`), waitLong)
	sess := startRestoreMode(t, d, a.key, hostKeys, restoreDir, "restore-user", "restore-pass")
	select {
	case code := <-done:
		t.Logf("restore: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
		if code != 0 {
			t.Fatalf("restore exit %d", code)
		}
	case <-time.After(waitLong):
		t.Fatal("restore did not finish")
	}
	// serve's log says who restored what: the machine, the snapshot and
	// the bytes, with the peer that asked.
	for _, re := range []string{
		`msg="restore started" machine=` + machineUUID + ` unit=web1 source=etc snapshot=` + snapshot + ` path="" module=turku-restore port=\d+ dry_run=false user=\S* peer_uid=\d+ peer_pid=\d+`,
		`level=INFO msg="restore finished" machine=` + machineUUID + ` .* snapshot=` + snapshot + ` .* bytes=[1-9]\d* result=ok`,
	} {
		d.log.WaitForLine(t, regexp.MustCompile(re), waitLong)
	}
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(restoreDir, name)); err != nil || string(got) != want {
			t.Errorf("restored %s = %q, %v; want %q", name, got, err, want)
		}
	}
	// The test daemon runs without chroot, so it munges the links it
	// receives ("munge symlinks", rsyncd.conf(5)); the agent's does not.
	if target, err := os.Readlink(filepath.Join(restoreDir, "escape")); err != nil || !strings.HasSuffix(target, private) {
		t.Errorf("restored link escape -> %q, %v; want the link itself", target, err)
	}
	if _, err := os.Stat(filepath.Join(restoreDir, "secret.key")); !os.IsNotExist(err) {
		t.Errorf("storage unit's file arrived on the machine: %v", err)
	}

	// A changed file on the machine: --dry-run names it and changes nothing.
	os.WriteFile(filepath.Join(restoreDir, "hosts"), []byte("edited on the machine\n"), 0o644)
	r = restore("web1", "etc", snapshot, "--dry-run", "--user", "restore-user", "--password-file", pwFile)
	if r.code != 0 || !regexp.MustCompile(`(?m)^[<>.]f\S* hosts$`).MatchString(r.stdout) || strings.Contains(r.stdout, "app.conf") {
		t.Errorf("dry run: exit %d, stdout %q; want hosts listed and nothing else", r.code, r.stdout)
	}
	if got, _ := os.ReadFile(filepath.Join(restoreDir, "hosts")); string(got) != "edited on the machine\n" {
		t.Errorf("dry run changed hosts to %q", got)
	}

	// One path, by the snapshot's name and RSYNC_PASSWORD; it lands at
	// the same relative path in the restore module.
	pathDir := t.TempDir()
	sess.CloseStdin()
	sess.Wait(t, waitLong)
	sess = startRestoreMode(t, d, a.key, hostKeys, pathDir, "restore-user", "restore-pass")
	t.Setenv("RSYNC_PASSWORD", "restore-pass")
	r = restore("web1", "etc", snapshot, "--path", "sub/deep", "--user", "restore-user")
	if r.code != 0 || !strings.Contains(r.stderr, "Restored:") {
		t.Fatalf("--path: exit %d", r.code)
	}
	if got, err := os.ReadFile(filepath.Join(pathDir, "sub", "deep", "more")); err != nil || string(got) != "y\n" {
		t.Errorf("restored sub/deep/more = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(pathDir, "hosts")); !os.IsNotExist(err) {
		t.Errorf("--path sub/deep also restored hosts: %v", err)
	}

	// Refusals: each a clear error and its exit status; nothing sent.
	t.Setenv("RSYNC_PASSWORD", "")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unreadable password file", []string{"web1", "etc", "--user", "restore-user", "--password-file", filepath.Join(t.TempDir(), "x")}, 1, "--password-file"},
		{"missing snapshot", []string{"web1", "etc", "etc_20990101-000000_ffff", "--user", "u", "--password-file", pwFile}, 1, `no snapshot named "etc_20990101-000000_ffff"`},
		{"before the first snapshot", []string{"web1", "etc", "2001-01-01", "--user", "u", "--password-file", pwFile}, 1, "no snapshot before 2001-01-01T00:00:00Z"},
		{"missing path", []string{"web1", "etc", "--path", "sub/nothing", "--user", "u", "--password-file", pwFile}, 1, `sub/nothing does not exist in the snapshot`},
		{"path through the agent's link", []string{"web1", "etc", "--path", "escape/secret.key", "--user", "u", "--password-file", pwFile}, 1, "escape is a symbolic link in the snapshot"},
		{"path leaving the snapshot", []string{"web1", "etc", "--path", "../../..", "--user", "u", "--password-file", pwFile}, 1, `".." would leave the snapshot`},
		{"missing source", []string{"web1", "home", "--user", "u", "--password-file", pwFile}, 1, `no snapshots of source "home" (sources: etc)`},
		{"unknown machine", []string{"db9", "etc", "--user", "u", "--password-file", pwFile}, 1, `no machine has unit name "db9"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := restore(tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d with %q", r.code, r.stderr, tt.code, tt.want)
			}
		})
	}
	badPw := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(badPw, []byte("guessed\n"), 0o600)
	r = restore("web1", "etc", "--user", "restore-user", "--password-file", badPw)
	if r.code != exitRsyncAuth || !strings.Contains(r.stderr, `refused user "restore-user": wrong user or password`) {
		t.Errorf("wrong password: exit %d, stderr %q", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(pathDir); len(entries) != 1 {
		t.Errorf("restore dir holds %d entries after the refusals, want only sub", len(entries))
	}

	// The agent's restore session ends while root types the password (a
	// FIFO: restore blocks reading it); restore asks serve again before
	// connecting, and sends nothing.
	fifo := filepath.Join(t.TempDir(), "pw-fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	result := make(chan runResult, 1)
	go func() { result <- restore("web1", "etc", "--user", "restore-user", "--password-file", fifo) }()
	opened := make(chan *os.File, 1)
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // returns once restore reads the password
		if err != nil {
			t.Error(err)
		}
		opened <- w
	}()
	var typing *os.File
	select {
	case typing = <-opened:
	case r := <-result:
		t.Fatalf("restore ended before reading the password: exit %d, stderr %q", r.code, r.stderr)
	}
	sess.CloseStdin()
	sess.Wait(t, waitLong) // serve ended the session before the agent's ssh exits
	typing.WriteString("restore-pass\n")
	typing.Close()
	select {
	case r = <-result:
	case <-time.After(waitLong):
		t.Fatal("restore did not finish")
	}
	if r.code != exitNoRestoreSession || !strings.Contains(r.stderr, "ended while the password was read") {
		t.Errorf("session ended while typing: exit %d, stderr %q; want %d and the session named", r.code, r.stderr, exitNoRestoreSession)
	}
	if entries, _ := os.ReadDir(pathDir); len(entries) != 1 {
		t.Errorf("restore dir holds %d entries after the session ended, want only sub", len(entries))
	}

	if diff := cmp.Diff(storage, treeState(t, s.volume)); diff != "" {
		t.Errorf("restores changed the storage unit (-before +after):\n%s", diff)
	}
}
