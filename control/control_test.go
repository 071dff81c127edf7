package control

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/monitor"
)

// startServer serves the live state opts.State (a fresh *monitor.State
// when nil) on a socket in a temporary directory.
func startServer(t *testing.T, opts Options, mopts monitor.Options) (string, *monitor.State) {
	t.Helper()
	state := monitor.New(mopts)
	if opts.State == nil {
		opts.State = state
	}
	path := filepath.Join(t.TempDir(), "run", "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		ln.Close()
	})
	return path, state
}

func TestStatusShowsLiveState(t *testing.T) {
	vols := []monitor.Volume{
		{Name: "default", Path: "/srv/turku", AcceptNew: true, HighWaterPct: 80, MaxUsagePct: 95, SizeBytes: 100 << 30, FreeBytes: 40 << 30, UsedPct: 60},
		{Name: "gone", Path: "/srv/missing", Err: "statfs /srv/missing: no such file or directory"},
	}
	path, live := startServer(t, Options{Version: "v1", MaxConcurrentBackups: func() int { return 2 }},
		monitor.Options{Volumes: func() []monitor.Volume { return vols }, SpooledReports: func() int { return 2 }})
	live.SetMachines(3)
	live.KeyRefreshed(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	received, endA := live.SessionStarted(monitor.ModeCheckin, "m-a", "web1", "127.0.0.1:4000", 51000, 0)
	_, endR := live.SessionStarted(monitor.ModeRestore, "m-b", "db1", "127.0.0.1:4001", 52000, 52001)
	received(100) // before rsync starts: not the backup's
	var files atomic.Int64
	files.Store(7)
	live.BackupPhase("m-a", "web1", "etc", monitor.PhaseRunning, files.Load)
	received(4096)
	live.BackupPhase("m-c", "", "home", monitor.PhaseWaiting, nil)

	st, err := GetStatus(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Agents) != 2 || len(st.Restores) != 1 || st.Restores[0].RestorePort != 52001 || st.Restores[0].AgentPort != 52000 || st.Restores[0].Machine != "m-b" {
		t.Errorf("agents %+v, restores %+v", st.Agents, st.Restores)
	}
	if len(st.Backups) != 1 || st.Backups[0].Bytes != 4096 || st.Backups[0].Files == nil || *st.Backups[0].Files != 7 || st.Backups[0].State != monitor.PhaseRunning {
		t.Errorf("backups %+v", st.Backups)
	}
	if len(st.Waiting) != 1 || st.Waiting[0].Source != "home" || st.Waiting[0].State != monitor.PhaseWaiting {
		t.Errorf("waiting %+v", st.Waiting)
	}
	if st.Keys.Machines != 3 || st.Keys.From != "api" || st.Version != "v1" || st.MaxConcurrentBackups != 2 {
		t.Errorf("keys %+v, version %q, max %d", st.Keys, st.Version, st.MaxConcurrentBackups)
	}
	if st.SpooledReports != 2 {
		t.Errorf("spooled reports %d, want 2", st.SpooledReports)
	}
	wantVols := []monitor.Volume{
		{Name: "default", Path: "/srv/turku", AcceptNew: true, HighWaterPct: 80, MaxUsagePct: 95, SizeBytes: 100 << 30, FreeBytes: 40 << 30, UsedPct: 60},
		{Name: "gone", Path: "/srv/missing", Err: "statfs /srv/missing: no such file or directory"},
	}
	if diff := cmp.Diff(wantVols, st.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}

	// Bytes and files are read at each request.
	received(4096)
	files.Store(9)
	st, err = GetStatus(context.Background(), path)
	if err != nil || len(st.Backups) != 1 || st.Backups[0].Bytes != 8192 || *st.Backups[0].Files != 9 {
		t.Fatalf("second status %+v, %v: want 8192 bytes, 9 files", st, err)
	}

	endA()
	endR()
	endR() // idempotent
	live.BackupFinished("m-a", "web1", "etc", true, time.Now(), time.Now(), "")
	live.BackupFinished("m-c", "", "home", false, time.Now(), time.Now(), "rsync exited with return code 23")
	st, err = GetStatus(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Agents)+len(st.Restores)+len(st.Backups)+len(st.Waiting) != 0 {
		t.Errorf("after the end: %+v", st)
	}
	// The failed source is listed with its error; the successful one not.
	if len(st.Failing) != 1 || st.Failing[0].Machine != "m-c" || st.Failing[0].Source != "home" ||
		st.Failing[0].Failures != 1 || st.Failing[0].LastError != "rsync exited with return code 23" || !st.Failing[0].LastSuccess.IsZero() {
		t.Errorf("failing %+v, want m-c home once, never succeeded", st.Failing)
	}
	live.BackupFinished("m-c", "", "home", true, time.Now(), time.Now(), "")
	if st, err = GetStatus(context.Background(), path); err != nil || len(st.Failing) != 0 {
		t.Errorf("after a success: failing %+v, %v", st.Failing, err)
	}
}

func TestWaitRestore(t *testing.T) {
	path, live := startServer(t, Options{}, monitor.Options{})
	// None yet: the wait ends with the caller's context.
	ctx, cancel := context.WithTimeoutCause(context.Background(), 50*time.Millisecond, errors.New("gave up"))
	defer cancel()
	if _, err := WaitRestore(ctx, path, "m-a"); err == nil || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("no session: %v, want the caller's cause", err)
	}

	// A checkin of the same machine and another machine's restore do not
	// answer; this machine's restore does, whenever it starts.
	started := func(mode, machine, unit string, agentPort, restorePort int) func() {
		_, end := live.SessionStarted(mode, machine, unit, "127.0.0.1:4000", agentPort, restorePort)
		return end
	}
	defer started(monitor.ModeCheckin, "m-a", "", 0, 0)()
	defer started(monitor.ModeRestore, "m-b", "", 0, 1)()
	got := make(chan *monitor.Session, 1)
	errc := make(chan error, 1)
	go func() {
		a, err := WaitRestore(context.Background(), path, "m-a")
		got <- a
		errc <- err
	}()
	defer started(monitor.ModeRestore, "m-a", "web1", 50000, 50001)()
	select {
	case a := <-got:
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if a.Machine != "m-a" || a.RestorePort != 50001 || a.Mode != monitor.ModeRestore {
			t.Errorf("got %+v, want m-a's restore on 50001", a)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("WaitRestore did not answer")
	}
}

func TestListenSocketFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "control.sock")

	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket %v, %v: want a 0600 socket", fi.Mode(), err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "another turku-storage serve") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
	ln.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}

	// A socket left by a process that died is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, err = Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()

	// Anything else at the path is left alone.
	os.WriteFile(path, []byte("precious"), 0o644)
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a file: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "precious" {
		t.Errorf("file changed to %q", data)
	}
	if _, err := Listen("relative.sock"); err == nil {
		t.Error("relative path accepted")
	}
}

// TestOtherUserRefused: a local user who is not root nor serve's user gets
// nothing, even if the socket's mode was widened by hand. The test binary
// itself, run as nobody, plays that user.
func TestOtherUserRefused(t *testing.T) {
	if p := os.Getenv("CONTROL_TEST_DIAL"); p != "" {
		_, err := GetStatus(context.Background(), p)
		if err == nil {
			os.Stdout.WriteString("GOT STATUS\n")
			os.Exit(0)
		}
		os.Stdout.WriteString("ERR " + err.Error() + "\n")
		os.Exit(3)
	}
	if os.Getuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	path, live := startServer(t, Options{}, monitor.Options{})
	_, end := live.SessionStarted(monitor.ModeRestore, "secret-machine", "", "127.0.0.1:4000", 0, 1)
	defer end()
	// Let nobody reach the socket's directory (t.TempDir makes 0700 ones).
	for d := filepath.Dir(path); len(d) > len(os.TempDir()); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	// The test binary sits in a directory only root may read.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(filepath.Dir(filepath.Dir(path)), "control.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	dial := func() (string, int) {
		cmd := exec.Command(bin, "-test.run=^TestOtherUserRefused$")
		cmd.Env = append(os.Environ(), "CONTROL_TEST_DIAL="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil {
			t.Fatalf("run as nobody: %v", err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	// As created (0600): the kernel refuses the connection.
	if out, code := dial(); code != 3 || strings.Contains(out, "secret-machine") {
		t.Errorf("mode 0600: exit %d, %q", code, out)
	}
	// Widened by mistake: the server refuses the peer.
	os.Chmod(path, 0o666)
	out, code := dial()
	if code != 3 || !strings.Contains(out, "permission denied") || strings.Contains(out, "secret-machine") {
		t.Errorf("mode 0666: exit %d, %q; want the server's refusal", code, out)
	}
}

// TestStatusDocumentKeys pins the keys of the document `status --json`
// prints, every list holding one element: operators script against them,
// so a key may be added but never renamed or dropped.
func TestStatusDocumentKeys(t *testing.T) {
	clk := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	live := monitor.New(monitor.Options{
		Now:            func() time.Time { return clk },
		SpooledReports: func() int { return 1 },
		Volumes: func() []monitor.Volume {
			return []monitor.Volume{{Name: "v", Path: "/srv/v", State: "missing", Message: "m", Err: "e"}}
		},
	})
	live.KeyRefreshed(clk)
	live.SessionStarted(monitor.ModeCheckin, "m-a", "web1", "127.0.0.1:4000", 51000, 0)
	live.SessionStarted(monitor.ModeRestore, "m-b", "db1", "127.0.0.1:4001", 52000, 52001)
	live.BackupPhase("m-a", "web1", "etc", monitor.PhaseRunning, func() int64 { return 1 })
	live.BackupPhase("m-c", "u", "home", monitor.PhaseWaiting, nil)
	live.BackupFinished("m-d", "u", "var", false, clk, clk, "failed")
	live.BackupFinished("m-d", "u", "var", false, clk, clk, "failed")
	live.SetOrphans(map[string]monitor.Orphan{"m-e": {Unit: "gone1", Since: clk}})
	published := false
	srv, err := NewServer(Options{State: live, Storage: "primary", Version: "v1", Started: clk,
		Published: func() *bool { return &published }})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(srv.Status())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	got := keyPaths("", doc)
	want := []string{
		"agents", "agents[].agent_port", "agents[].machine", "agents[].mode", "agents[].remote", "agents[].since", "agents[].unit",
		"backups", "backups[].bytes", "backups[].bytes_per_second", "backups[].elapsed_seconds", "backups[].files",
		"backups[].machine", "backups[].since", "backups[].source", "backups[].state", "backups[].unit",
		"failing", "failing[].consecutive_failures", "failing[].failing_since", "failing[].last_attempt", "failing[].last_error",
		"failing[].machine", "failing[].source", "failing[].unit",
		"keys", "keys.from", "keys.machines", "keys.updated",
		"max_concurrent_backups", "now",
		"orphans", "orphans[].machine", "orphans[].since", "orphans[].unit", "published",
		"restores", "restores[].agent_port", "restores[].machine", "restores[].mode", "restores[].remote", "restores[].restore_port",
		"restores[].since", "restores[].unit",
		"spooled_reports", "started", "storage", "version",
		"volumes", "volumes[].accept_new", "volumes[].accept_new_high_water_pct", "volumes[].error", "volumes[].free_bytes",
		"volumes[].inode_used_pct", "volumes[].inodes", "volumes[].inodes_free", "volumes[].max_inode_usage_pct",
		"volumes[].max_usage_pct", "volumes[].message", "volumes[].name", "volumes[].path", "volumes[].size_bytes",
		"volumes[].state", "volumes[].used_pct",
		"waiting", "waiting[].bytes", "waiting[].bytes_per_second", "waiting[].elapsed_seconds", "waiting[].machine",
		"waiting[].since", "waiting[].source", "waiting[].state", "waiting[].unit",
	}
	// Every key of want is there; any other is an addition.
	var missing []string
	for _, k := range want {
		if !slices.Contains(got, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("keys missing from the document: %v\n(all: %s)", missing, cmp.Diff(want, got))
	}
}

// keyPaths lists the key paths of a decoded JSON value, sorted; a list's
// elements are read as "name[]".
func keyPaths(prefix string, v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out = append(out, p)
			out = append(out, keyPaths(p, e)...)
		}
	case []any:
		for _, e := range v {
			for _, p := range keyPaths(prefix+"[]", e) {
				if !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
