//go:build bench

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// server is one side under test.
type server struct {
	name string // "ours" or "openssh"
	port int
	dir  string // its storage config dir (volumes, var)
}

func (b *bench) servers() []server {
	all := []server{
		{name: "ours", port: b.s.servePort, dir: b.s.oursDir},
		{name: "openssh", port: b.s.sshdPort, dir: b.s.pingDir},
	}
	for _, s := range all {
		if s.name == b.only {
			return []server{s}
		}
	}
	return all
}

// rotate returns xs starting at run mod len: runs alternate which side
// goes first, so that drift favours neither.
func rotate[T any](xs []T, run int) []T {
	k := run % len(xs)
	return append(append([]T{}, xs[k:]...), xs[:k]...)
}

// wipeStorage removes every machine directory and link of a storage side.
// The volume's marker stays: without it serve takes the volume for an
// unmounted one and backs nothing up.
func wipeStorage(dir string) error {
	if err := os.RemoveAll(filepath.Join(dir, "var", "machines")); err != nil {
		return err
	}
	vol := filepath.Join(dir, "vol")
	if err := os.MkdirAll(vol, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(vol)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == backup.MarkerFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(vol, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func checkinRequest(port int, creds map[string]any) map[string]any {
	return map[string]any{"verbose": true, "action": "checkin", "port": port, "sources": creds}
}

// roundTrip is measurement (a): connect, authenticate, exec, nothing due,
// exit, with n registered machines and the agent's key last.
func (b *bench) roundTrip(ctx context.Context, n, runs int) (map[string]*stat, error) {
	ms := append(append([]*machine{}, b.filler[:n-1]...), b.agent)
	if err := b.s.setMachines(ctx, ms); err != nil {
		return nil, err
	}
	port, err := agenttest.PickFreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	res := map[string]*stat{"ours": {Unit: "ms"}, "openssh": {Unit: "ms"}}
	const warmup = 2
	for run := range warmup + runs {
		for _, srv := range rotate(b.servers(), run) {
			d, stderr, err := b.s.runAgent(ctx, agentRun{
				serverPort: srv.port, m: b.agent, fwdPort: port, fwdHost: "127.0.0.2",
				request: checkinRequest(port, map[string]any{}),
			}, time.Minute)
			if err == nil && !strings.Contains(stderr, "No sources to back up now") {
				err = fmt.Errorf("unexpected session output: %s", stderr)
			}
			if err != nil {
				return nil, fmt.Errorf("%s round trip: %w", srv.name, err)
			}
			if run >= warmup {
				res[srv.name].add(float64(d) / float64(time.Millisecond))
			}
		}
	}
	return res, nil
}

var restorePortRE = regexp.MustCompile(`Restore mode active on port (\d+)`)

// throughput is measurement (b): size bytes from a TCP source on the agent
// side, through the reverse forward, to a reader on the storage side. Both
// servers carry it during a restore session: OpenSSH because -R binds
// 127.0.0.1:PORT, ours because restore mode listens there for real.
func (b *bench) throughput(ctx context.Context, cipher string, size int64, runs int) (map[string]*stat, error) {
	port, err := agenttest.PickFreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	src, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	defer src.Close()
	go func() {
		zeros := make([]byte, 256<<10)
		for {
			c, err := src.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for left := size; left > 0; {
					n, err := c.Write(zeros[:min(int64(len(zeros)), left)])
					if err != nil {
						return
					}
					left -= int64(n)
				}
			}()
		}
	}()
	res := map[string]*stat{"ours": {Unit: "MiB/s"}, "openssh": {Unit: "MiB/s"}}
	for _, k := range []string{"ours", "openssh"} {
		res[k+" server cpu"] = &stat{Unit: "ms/MiB"}
		res[k+" client cpu"] = &stat{Unit: "ms/MiB"}
	}
	for run := range 1 + runs { // one warm-up
		for _, srv := range rotate(b.servers(), run) {
			st := res[srv.name]
			if st.Refused != "" {
				continue
			}
			mibs, scpu, ccpu, err := b.throughputOnce(ctx, srv, port, cipher, size)
			var refused *refusedError
			if errors.As(err, &refused) {
				st.Refused = refused.msg
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%s throughput %s: %w", srv.name, cipher, err)
			}
			if run >= 1 {
				st.add(mibs)
				res[srv.name+" server cpu"].add(scpu)
				res[srv.name+" client cpu"].add(ccpu)
			}
		}
	}
	return res, nil
}

type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// throughputOnce returns MiB/s, and the CPU time the server side (serve,
// or sshd and everything under it) and the ssh client spent per MiB.
func (b *bench) throughputOnce(ctx context.Context, srv server, port int, cipher string, size int64) (mibs, serverCPU, clientCPU float64, err error) {
	sess, err := b.s.startAgent(agentRun{
		serverPort: srv.port, m: b.agent, fwdPort: port, fwdHost: "127.0.0.2", cipher: cipher,
		request: map[string]any{"verbose": true, "action": "restore", "port": port},
	})
	if err != nil {
		return 0, 0, 0, err
	}
	closed := false
	defer func() {
		if !closed {
			sess.closeStdin()
			_, _ = sess.wait(ctx, 30*time.Second)
		}
	}()
	if err := sess.stderr.Await("Restore mode active on port ", 30*time.Second); err != nil {
		if out := sess.stderr.String(); strings.Contains(out, "no matching cipher") {
			return 0, 0, 0, &refusedError{msg: strings.TrimSpace(out)}
		}
		return 0, 0, 0, err
	}
	pid := b.s.sshd.Process.Pid
	if srv.name == "ours" {
		pid = b.s.serve.Process.Pid
	}
	m := restorePortRE.FindStringSubmatch(sess.stderr.String())
	listen := net.JoinHostPort("127.0.0.1", m[1])
	cpu0 := treeCPU(pid)
	start := time.Now()
	c, err := net.Dial("tcp", listen)
	if err != nil {
		return 0, 0, 0, err
	}
	n, err := io.Copy(io.Discard, c)
	d := time.Since(start)
	cpu1 := treeCPU(pid)
	c.Close()
	if err != nil {
		return 0, 0, 0, err
	}
	if n != size {
		return 0, 0, 0, fmt.Errorf("read %d bytes through the tunnel, want %d; ssh: %s", n, size, sess.stderr.String())
	}
	sess.closeStdin()
	if _, err := sess.wait(ctx, 30*time.Second); err != nil {
		return 0, 0, 0, err
	}
	closed = true
	mib := float64(size) / (1 << 20)
	ps := sess.cmd.ProcessState
	return mib / d.Seconds(),
		float64(cpu1-cpu0) / float64(time.Millisecond) / mib,
		float64(ps.UserTime()+ps.SystemTime()) / float64(time.Millisecond) / mib, nil
}

// rsyncBaseArgs are rsync.Pull.Args without --stats, link-dest, inplace or filters:
// what both storage sides run for these sources.
var rsyncBaseArgs = []string{"--archive", "--compress", "--numeric-ids", "--delete", "--delete-excluded", "--verbose"}

// backups is measurement (c): a full and then an unchanged backup of each
// dataset through both servers, and rsync straight against the daemon.
// Besides wall time it records CPU time, which a busy shared machine
// disturbs far less: the storage side's (serve, or sshd and everything
// under it, rsync included) and the agent side's (ssh client and rsync
// daemon).
func (b *bench) backups(ctx context.Context, runs int) (map[string]map[string]*stat, error) {
	if err := b.s.setMachines(ctx, []*machine{b.agent}); err != nil {
		return nil, err
	}
	port, err := agenttest.PickFreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	user, pass := "bench", fmt.Sprintf("%016x", rand.Uint64())
	var mods []agenttest.Module
	for _, ds := range b.datasets {
		mods = append(mods, agenttest.Module{Name: ds.name, Path: ds.dir, User: user, Password: pass})
		b.s.api.AddSource(b.agent.uuid, ds.name, apiclient.Source{Path: "/" + ds.name, Retention: "last 5 snapshots"})
		b.s.api.SetDue(b.agent.uuid, ds.name, false)
	}
	rsyncd, err := b.s.startRsyncd(ctx, filepath.Join(b.work, "agent-rsyncd"), "127.0.0.2", port, mods)
	if err != nil {
		return nil, err
	}
	defer b.s.p.stop(rsyncd, 5*time.Second)
	b.rsyncdPID = rsyncd.Process.Pid

	res := map[string]map[string]*stat{}
	sides := append(b.servers(), server{name: "direct", dir: filepath.Join(b.work, "direct")})
	for _, ds := range b.datasets {
		for _, kind := range []string{"full", "unchanged"} {
			for _, metric := range []string{"", " storage cpu", " agent cpu"} {
				key := ds.name + " " + kind + metric
				res[key] = map[string]*stat{}
				for _, sd := range sides {
					res[key][sd.name] = &stat{Unit: "s"}
				}
			}
		}
		creds := map[string]any{ds.name: map[string]string{"username": user, "password": pass}}
		for run := range runs {
			for _, sd := range rotate(sides, run) {
				var r [2]backupRun
				var err error
				if sd.name == "direct" {
					r, err = b.directBackup(ctx, sd.dir, port, ds.name, user, pass)
				} else {
					r, err = b.serverBackup(ctx, sd, port, ds.name, creds)
				}
				if err != nil {
					return nil, fmt.Errorf("%s backup of %s: %w", sd.name, ds.name, err)
				}
				b.logf("  %s %s: full %.2fs (cpu storage %.2fs, agent %.2fs), unchanged %.2fs (cpu storage %.2fs, agent %.2fs)",
					ds.name, sd.name, r[0].wall.Seconds(), r[0].storageCPU.Seconds(), r[0].agentCPU.Seconds(),
					r[1].wall.Seconds(), r[1].storageCPU.Seconds(), r[1].agentCPU.Seconds())
				for i, kind := range []string{"full", "unchanged"} {
					res[ds.name+" "+kind][sd.name].add(r[i].wall.Seconds())
					res[ds.name+" "+kind+" storage cpu"][sd.name].add(r[i].storageCPU.Seconds())
					res[ds.name+" "+kind+" agent cpu"][sd.name].add(r[i].agentCPU.Seconds())
				}
			}
		}
		for _, sd := range sides {
			if err := wipeStorage(sd.dir); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// backupRun is one timed backup.
type backupRun struct {
	wall       time.Duration
	storageCPU time.Duration
	agentCPU   time.Duration
}

// cpuWithReaped is the CPU time pid used plus what its reaped children
// (and theirs, recursively) used: utime, stime, cutime and cstime of
// /proc/PID/stat.
func cpuWithReaped(pid int) time.Duration { return statTicks(pid, 11, 12, 13, 14) }

// statTicks sums the fields of /proc/PID/stat at the given indexes (0 is
// the field after the command name, the state), in clock ticks, as a
// duration; 0 when pid is gone.
func statTicks(pid int, fields ...int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	var total int64
	for _, i := range fields {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		total += v
	}
	return time.Duration(total) * clockTick
}

// waitNoChildren waits (up to 5 s) until pid has reaped every child, so
// that their CPU time is in its cutime and cstime.
func waitNoChildren(pid int) {
	deadline := time.Now().Add(5 * time.Second)
	for len(tree(pid)) > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// serverBackup runs two checkins of source through srv from an empty
// storage: the full one and the unchanged one.
func (b *bench) serverBackup(ctx context.Context, srv server, port int, source string, creds map[string]any) ([2]backupRun, error) {
	var out [2]backupRun
	if err := wipeStorage(srv.dir); err != nil {
		return out, err
	}
	storagePID := b.s.sshd.Process.Pid
	if srv.name == "ours" {
		storagePID = b.s.serve.Process.Pid
	}
	for i := range out {
		b.s.api.SetDue(b.agent.uuid, source, true)
		syscall.Sync()
		s0, a0 := cpuWithReaped(storagePID), cpuWithReaped(b.rsyncdPID)
		sess, err := b.s.startAgent(agentRun{
			serverPort: srv.port, m: b.agent, fwdPort: port, fwdHost: "127.0.0.2",
			request: checkinRequest(port, creds),
		})
		if err != nil {
			return out, err
		}
		code, err := sess.wait(ctx, 30*time.Minute)
		if err == nil && code != 0 {
			err = fmt.Errorf("ssh exit %d: %s", code, strings.TrimSpace(sess.stderr.String()))
		}
		if err != nil {
			return out, err
		}
		// serve delivers the report after the session, in the background.
		if !b.reported(source, 30*time.Second) {
			return out, errors.New("session succeeded but the source is still due (no successful report)")
		}
		if srv.name == "openssh" {
			waitNoChildren(storagePID) // the session's sshd processes
		}
		waitNoChildren(b.rsyncdPID)
		ps := sess.cmd.ProcessState
		out[i] = backupRun{
			wall:       sess.elapsed(),
			storageCPU: cpuWithReaped(storagePID) - s0,
			agentCPU:   cpuWithReaped(b.rsyncdPID) - a0 + ps.UserTime() + ps.SystemTime(),
		}
	}
	return out, nil
}

// directBackup is the physical reference: the same rsync, straight to the
// daemon, into an empty tree and then with --link-dest against it.
func (b *bench) directBackup(ctx context.Context, dir string, port int, source, user, pass string) ([2]backupRun, error) {
	var out [2]backupRun
	if err := os.RemoveAll(dir); err != nil {
		return out, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return out, err
	}
	url := fmt.Sprintf("rsync://%s@127.0.0.2:%d/%s/", user, port, source)
	first, second := filepath.Join(dir, "1"), filepath.Join(dir, "2")
	for i, args := range [][]string{
		append(append([]string{}, rsyncBaseArgs...), url, first+"/"),
		append(append([]string{}, rsyncBaseArgs...), "--link-dest="+first, url, second+"/"),
	} {
		syscall.Sync()
		a0 := cpuWithReaped(b.rsyncdPID)
		cmd := exec.CommandContext(ctx, "rsync", args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "RSYNC_PASSWORD=" + pass}
		cmd.Stdout = io.Discard
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return out, fmt.Errorf("rsync: %v: %s", err, stderr.String())
		}
		wall := time.Since(start)
		waitNoChildren(b.rsyncdPID)
		out[i] = backupRun{
			wall:       wall,
			storageCPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(),
			agentCPU:   cpuWithReaped(b.rsyncdPID) - a0,
		}
	}
	return out, nil
}

// drawPorts draws n agent ports from 49152-65535 as turku-agent does
// (random.randint), from a fixed seed, and counts the collisions.
func drawPorts(seed uint64, n int) ([]int, int) {
	rng := rand.New(rand.NewPCG(seed, 0))
	seen := map[int]bool{}
	var ports []int
	coll := 0
	for range n {
		p := 49152 + rng.IntN(65535-49152+1)
		if seen[p] {
			coll++
		}
		seen[p] = true
		ports = append(ports, p)
	}
	return ports, coll
}

// concurrent is measurement (d): many agents at once, each with its own
// rsync daemon (on its own loopback address, as on its own host), ports
// drawn with collisions.
func (b *bench) concurrent(ctx context.Context, n int, seed uint64, runs int) (map[string]*stat, map[string]*stat, []int, error) {
	ok, wall, _, ports, err := b.atOnce(ctx, "fleet", b.fleetData, n, seed, runs)
	return ok, wall, ports, err
}

// atOnce runs n agents at once, each with its own rsync daemon serving
// data (on its own loopback address, as on its own host) and its port
// drawn from seed, runs times per side. It returns per side the successful
// backups, the wall time from the start to the last exit and the storage
// side's CPU time (serve and its rsyncs; or sshd, the session processes,
// the pings and their rsyncs).
func (b *bench) atOnce(ctx context.Context, name, data string, n int, seed uint64, runs int) (okCount, wall, cpu map[string]*stat, ports []int, err error) {
	ports, _ = drawPorts(seed, n)
	agents := make([]*machine, n)
	for i := range agents {
		agents[i] = b.fleet[i]
		if err := agents[i].writeKey(b.s.keyDir); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	if !b.machinesSet {
		if err := b.s.setMachines(ctx, agents); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	creds := make([]map[string]any, n)
	for i, m := range agents {
		pass := fmt.Sprintf("%016x", rand.Uint64())
		b.s.api.AddSource(m.uuid, "data", apiclient.Source{Path: "/data", Retention: "last 5 snapshots"})
		host := fmt.Sprintf("127.0.2.%d", i+1)
		cmd, err := b.s.startRsyncd(ctx, filepath.Join(b.work, name, m.unit), host, ports[i],
			[]agenttest.Module{{Name: "data", Path: data, User: "agent", Password: pass}})
		if err != nil {
			return nil, nil, nil, nil, err
		}
		defer b.s.p.stop(cmd, 5*time.Second)
		creds[i] = map[string]any{"data": map[string]string{"username": "agent", "password": pass}}
	}
	wall = map[string]*stat{"ours": {Unit: "s"}, "openssh": {Unit: "s"}}
	cpu = map[string]*stat{"ours": {Unit: "s"}, "openssh": {Unit: "s"}}
	okCount = map[string]*stat{"ours": {Unit: "of " + strconv.Itoa(n)}, "openssh": {Unit: "of " + strconv.Itoa(n)}}
	for run := range runs {
		for _, srv := range rotate(b.servers(), run) {
			if err := wipeStorage(srv.dir); err != nil {
				return nil, nil, nil, nil, err
			}
			for _, m := range agents {
				b.s.api.SetDue(m.uuid, "data", true)
			}
			syscall.Sync()
			storagePID := b.s.sshd.Process.Pid
			if srv.name == "ours" {
				storagePID = b.s.serve.Process.Pid
			}
			cpu0 := cpuWithReaped(storagePID)
			var wg sync.WaitGroup
			okc := make([]bool, n)
			ends := make([]time.Time, n)
			fails := make([]string, n)
			start := time.Now()
			for i, m := range agents {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, stderr, err := b.s.runAgent(ctx, agentRun{
						serverPort: srv.port, m: m, fwdPort: ports[i], fwdHost: fmt.Sprintf("127.0.2.%d", i+1),
						request: checkinRequest(ports[i], creds[i]),
						// Each agent connects from its own host's address.
						extra: []string{"-b", fmt.Sprintf("127.0.2.%d", i+1)},
					}, 20*time.Minute)
					ends[i] = time.Now()
					// The report goes to the API after the session ends.
					okc[i] = err == nil && b.reportedFor(m.uuid, "data", 30*time.Second)
					if !okc[i] {
						fails[i] = failureLines(stderr)
						if err != nil && fails[i] == "" {
							fails[i] = err.Error()
						}
					}
				}()
			}
			wg.Wait()
			if srv.name == "openssh" {
				waitNoChildren(storagePID) // the session's sshd processes
			}
			cpu[srv.name].add((cpuWithReaped(storagePID) - cpu0).Seconds())
			var last time.Time
			good := 0
			for i := range agents {
				if ends[i].After(last) {
					last = ends[i]
				}
				if okc[i] {
					good++
				} else {
					wall[srv.name].Errors = append(wall[srv.name].Errors, fmt.Sprintf("run %d agent %d (port %d): %s", run+1, i, ports[i], fails[i]))
				}
			}
			b.logf("  %s: %d/%d in %.1fs, storage CPU %.2fs", srv.name, good, n, last.Sub(start).Seconds(), cpu[srv.name].Runs[len(cpu[srv.name].Runs)-1])
			wall[srv.name].add(last.Sub(start).Seconds())
			okCount[srv.name].add(float64(good))
		}
	}
	return okCount, wall, cpu, ports, nil
}

// failureLines keeps what tells why a session failed: ssh's warnings and
// the storage unit's ERROR lines, else the last lines.
func failureLines(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "Warning:") || strings.Contains(l, "ERROR") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) == 0 {
		return lastLines(s, 3)
	}
	return strings.Join(keep, " | ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// reported reports whether the measured agent's source stopped being due
// (its successful report arrived) within timeout.
func (b *bench) reported(source string, timeout time.Duration) bool {
	return b.reportedFor(b.agent.uuid, source, timeout)
}

// reportedFor is reported for any machine. The storage unit delivers a
// report after the agent's session has ended, so it is waited for.
func (b *bench) reportedFor(uuid, source string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for b.s.api.Due(uuid, source) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
