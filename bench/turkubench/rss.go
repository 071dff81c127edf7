//go:build bench

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// mem is the memory of a set of processes, in KiB.
type mem struct {
	Procs int
	RSS   int64 // sum of VmRSS (counts shared pages once per process)
	PSS   int64 // sum of Pss (shared pages split between their users)
}

// procMem reads VmRSS and Pss of one process.
func procMem(pid int) (rss, pss int64, err error) {
	rss, err = kbField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	if err != nil {
		return 0, 0, err
	}
	pss, err = kbField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
	return rss, pss, err
}

func kbField(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// treeMem sums the memory of pid and all its descendants.
func treeMem(pid int) (mem, error) {
	var m mem
	for _, p := range tree(pid) {
		rss, pss, err := procMem(p)
		if err != nil {
			if p == pid {
				return mem{}, err
			}
			continue // gone meanwhile
		}
		m.Procs++
		m.RSS += rss
		m.PSS += pss
	}
	return m, nil
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat;
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// treeCPU sums the user and system CPU time pid and its living
// descendants have used so far.
func treeCPU(pid int) time.Duration {
	var total time.Duration
	for _, p := range tree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// After the command: state(0) ppid(1) ... utime(11) stime(12).
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			total += time.Duration(u+st) * clockTick
		}
	}
	return total
}

// tree returns pid and all its descendants, parents first.
func tree(pid int) []int {
	children := map[int][]int{}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		self, _ := strconv.Atoi(strings.Fields(s)[0])
		children[ppid] = append(children[ppid], self)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, p)
		queue = append(queue, children[p]...)
	}
	return out
}

// memResult is measurement (e) for one server.
type memResult struct {
	// Loaded is 5 s after start with the machines loaded; Idle is after
	// settle more, once the Go runtime's periodic GC (every 2 min when
	// nothing else triggers one) and scavenger have run.
	Loaded   mem
	Settle   time.Duration
	Idle     mem
	Sessions int
	Busy     mem
}

// PerSessionRSS is the added RSS per concurrent session, KiB.
func (r memResult) PerSessionRSS() float64 {
	return float64(r.Busy.RSS-r.Idle.RSS) / float64(r.Sessions)
}

// PerSessionPSS is the added PSS per concurrent session, KiB.
func (r memResult) PerSessionPSS() float64 {
	return float64(r.Busy.PSS-r.Idle.PSS) / float64(r.Sessions)
}

// memory is measurement (e): the server's memory idle with the machines
// currently registered (the caller registered 10,000), and with k restore
// sessions held open at once. For OpenSSH the sshd listener and every
// process under it (per-connection sshd, shell, `turku-storage ping`)
// count.
func (b *bench) memory(ctx context.Context, k int, settle time.Duration) (map[string]memResult, error) {
	res := map[string]memResult{}
	sessMachines := b.fleet[:k]
	for _, m := range sessMachines {
		if err := m.writeKey(b.s.keyDir); err != nil {
			return nil, err
		}
	}
	for _, srv := range b.servers() {
		pid := b.s.sshd.Process.Pid
		if srv.name == "ours" {
			pid = b.s.serve.Process.Pid
		}
		time.Sleep(5 * time.Second)
		loaded, err := treeMem(pid)
		if err != nil {
			return nil, err
		}
		if srv.name == "ours" && settle > 0 {
			b.logf("  waiting %v for serve to settle", settle)
			select {
			case <-time.After(settle):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		idle, err := treeMem(pid)
		if err != nil {
			return nil, err
		}
		busy, err := b.busyMem(ctx, srv, pid, sessMachines)
		if err != nil {
			return nil, err
		}
		res[srv.name] = memResult{Loaded: loaded, Settle: settle, Idle: idle, Sessions: k, Busy: busy}
		b.logf("  %s: loaded RSS %d KiB; idle RSS %d KiB (PSS %d, %d procs); %d sessions RSS %d KiB (PSS %d, %d procs)",
			srv.name, loaded.RSS, idle.RSS, idle.PSS, idle.Procs, k, busy.RSS, busy.PSS, busy.Procs)
	}
	// With 10,000 machines serve holds heap the sessions fit in; with only
	// the session machines registered, its heap is small and the
	// sessions' memory shows in RSS.
	ours := b.servers()[0]
	if err := b.s.setMachines(ctx, sessMachines); err != nil {
		return nil, err
	}
	time.Sleep(5 * time.Second)
	idle, err := treeMem(b.s.serve.Process.Pid)
	if err != nil {
		return nil, err
	}
	busy, err := b.busyMem(ctx, ours, b.s.serve.Process.Pid, sessMachines)
	if err != nil {
		return nil, err
	}
	res["ours, session machines only"] = memResult{Loaded: idle, Idle: idle, Sessions: k, Busy: busy}
	b.logf("  ours with %d machines: idle RSS %d KiB; %d sessions RSS %d KiB", k, idle.RSS, k, busy.RSS)
	return res, nil
}

// busyMem holds one restore session per machine open at once on srv and
// returns the memory of pid's process tree meanwhile. The sessions start
// one after the other, each once the previous one is up: they all come
// from one address, and serve admits only a few unauthenticated
// connections per address at a time (ssh_per_source_max_startups).
func (b *bench) busyMem(ctx context.Context, srv server, pid int, ms []*machine) (mem, error) {
	var sessions []*session
	defer func() {
		for _, sess := range sessions {
			sess.closeStdin()
		}
		for _, sess := range sessions {
			_, _ = sess.wait(ctx, time.Minute)
		}
	}()
	for _, m := range ms {
		port, err := agenttest.PickFreePort("127.0.0.1")
		if err != nil {
			return mem{}, err
		}
		sess, err := b.s.startAgent(agentRun{
			serverPort: srv.port, m: m, fwdPort: port, fwdHost: "127.0.0.2",
			request: map[string]any{"verbose": true, "action": "restore", "port": port},
		})
		if err != nil {
			return mem{}, err
		}
		sessions = append(sessions, sess)
		if err := sess.stderr.Await("Restore mode active on port ", time.Minute); err != nil {
			return mem{}, fmt.Errorf("%s: %w", srv.name, err)
		}
	}
	time.Sleep(2 * time.Second)
	return treeMem(pid)
}
