//go:build bench

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// Measurement (h), the night: N agents, each with its own key, its own
// loopback address (127.20.B.C, as its own host) and its own small tree,
// arrive at random over a window and back up once; a second night, with
// some files changed, is incremental. Each agent does what turku-agent's
// ping does: start its rsync daemon on its address and a random port
// (49152-65535), run ssh with -R to that port, wait for the session to
// end, stop the daemon. Both servers get the same schedule and the same
// trees, one night after the other: night 1 ours, night 1 OpenSSH (sshd
// with its default MaxStartups 10:30:100), then the trees change, night 2
// ours, night 2 OpenSSH.

const (
	nightFilesPerAgent = 300 // files of 1-6 KiB: about 1 MiB per agent
	nightChangedFiles  = 10  // rewritten between the nights, plus one new file
	nightBaseTrees     = 4   // distinct trees the agents' trees are hard links to
	nightSource        = "data"
	nightHSeed         = 8
	burstAgents        = 90 // under serve's MaxStartups full point (100)
)

// nightSide is what results.json's "night" holds for one server: both
// nights together, then each night on its own.
type nightSide struct {
	Agents int `json:"agents"`
	// Completed counts agents whose backup succeeded and was reported on
	// both nights; Failed those that failed on at least one.
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	// RefusedAtAdmission counts sessions (over both nights) the server
	// closed before its version line: ssh's "kex_exchange_identification".
	RefusedAtAdmission int `json:"refused_at_admission"`
	// P50/P99 of the agent's ssh, start to exit, over the successful
	// sessions of both nights.
	P50 float64 `json:"p50_seconds"`
	P99 float64 `json:"p99_seconds"`
	// Peak over both nights of the server's process tree, sampled every
	// second: serve and its rsyncs; or sshd, its session processes, the
	// pings and their rsyncs.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	PeakFDs    int     `json:"peak_fds"`
	// CPU of that tree (reaped children included) per successful backup.
	CPUPerBackup float64 `json:"cpu_seconds_per_backup"`
	// Every call the fake API answered during the nights, per successful
	// backup.
	APICallsPerBackup float64 `json:"api_calls_per_backup"`
	// ReportsExactlyOnce: every agent that completed had exactly one
	// successful report per night, none arrived for a failed one, and no
	// report was left spooled (which would be sent again later).
	ReportsExactlyOnce bool `json:"reports_exactly_once"`

	Nights []*nightRun `json:"nights"`
}

// nightRun is one night of one server.
type nightRun struct {
	Night              int     `json:"night"`
	Completed          int     `json:"completed"`
	Failed             int     `json:"failed"`
	RefusedAtAdmission int     `json:"refused_at_admission"`
	P50                float64 `json:"p50_seconds"`
	P99                float64 `json:"p99_seconds"`
	Max                float64 `json:"max_seconds"`
	WallSeconds        float64 `json:"wall_seconds"` // first start to last report
	MaxConcurrent      int     `json:"max_concurrent_sessions"`
	PeakRSSMiB         float64 `json:"peak_rss_mib"`
	PeakFDs            int     `json:"peak_fds"`
	PeakProcs          int     `json:"peak_procs"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	// CPUOwnSeconds is the server process's own share of CPUSeconds
	// (serve; the sshd listener), the rest its reaped children's
	// (serve's rsyncs; every session process, ping and rsync under sshd).
	CPUOwnSeconds      float64  `json:"cpu_own_seconds"`
	CPUPerBackup       float64  `json:"cpu_seconds_per_backup"`
	APICalls           int      `json:"api_calls"`
	APICallsByName     any      `json:"api_calls_by_name"`
	APICallsPerBackup  float64  `json:"api_calls_per_backup"`
	ReportsExactlyOnce bool     `json:"reports_exactly_once"`
	Duplicates         int      `json:"duplicate_reports"`
	Missing            int      `json:"missing_reports"`
	LeftSpooled        int      `json:"reports_left_spooled"`
	Failures           []string `json:"failures,omitempty"` // the first 20
	// Slot waits: from the agent's "Begin: UNIT SOURCE" line to rsync's
	// start (the snapshot's sync_begin), for the backups that waited for
	// a max_concurrent_backups slot more than 100 ms (serve only: each
	// ping under sshd runs its rsync at once).
	SlotWaited         int     `json:"slot_waited"`
	SlotWaitP50        float64 `json:"slot_wait_p50_seconds"`
	SlotWaitMax        float64 `json:"slot_wait_max_seconds"`
	SlotWaitMaxOverP50 float64 `json:"slot_wait_max_over_p50"`

	failed    []int     // agents that failed
	durations []float64 // of the successful sessions
}

// nightAgent is one agent of (h).
type nightAgent struct {
	m        *machine
	addr     string
	tree     string
	password string
}

// nightAddr is agent i's address: 127.20.0.1, ..., 127.20.0.250,
// 127.20.1.1, ...
func nightAddr(i int) string {
	return fmt.Sprintf("127.%d.%d.%d", 20+i/(250*250), i/250%250, i%250+1)
}

// night is measurement (h).
func (b *bench) night(ctx context.Context, n int, window time.Duration) (map[string]*nightSide, error) {
	ms, err := b.machines(n)
	if err != nil {
		return nil, err
	}
	b.logf("  writing %d agent keys and registering them", n)
	for _, m := range ms {
		if err := m.writeKey(b.s.keyDir); err != nil {
			return nil, err
		}
	}
	if err := b.s.setMachines(ctx, ms); err != nil {
		return nil, err
	}
	dir := filepath.Join(b.work, "night")
	b.logf("  generating %d trees of %d files under %s", n, nightFilesPerAgent, dir)
	agents, bytes, err := makeNightTrees(dir, ms)
	if err != nil {
		return nil, err
	}
	b.logf("  %d bytes per agent on average", bytes/int64(n))
	for _, a := range agents {
		b.s.api.AddSource(a.m.uuid, nightSource, apiclient.Source{Path: "/" + nightSource, Retention: "last 5 snapshots"})
	}
	shm := filepath.Join("/dev/shm", filepath.Base(b.work))
	defer os.RemoveAll(shm)
	out := map[string]*nightSide{}
	for _, srv := range b.servers() {
		out[srv.name] = &nightSide{Agents: n}
		if err := volumeInMemory(srv.dir, filepath.Join(shm, srv.name)); err != nil {
			return nil, err
		}
		if err := wipeStorage(srv.dir); err != nil {
			return nil, err
		}
	}
	for night := 1; night <= 2; night++ {
		if night == 2 {
			b.logf("  changing %d files and adding one in each tree", nightChangedFiles)
			if err := changeNightTrees(agents, night); err != nil {
				return nil, err
			}
		}
		rng := rand.New(rand.NewPCG(nightHSeed, uint64(night)))
		offsets := make([]time.Duration, n)
		ports := make([]int, n)
		for i := range agents {
			offsets[i] = time.Duration(rng.Int64N(int64(window)))
			ports[i] = 49152 + rng.IntN(65535-49152+1)
		}
		for _, srv := range b.servers() {
			b.logf("  night %d, %s: %d agents over %v", night, srv.name, n, window)
			r, err := b.nightOnce(ctx, srv, night, agents, offsets, ports)
			if err != nil {
				return nil, fmt.Errorf("(h) night %d %s: %w", night, srv.name, err)
			}
			b.logf("    slot waits over 100 ms: %d, median %.2fs, max %.2fs", r.SlotWaited, r.SlotWaitP50, r.SlotWaitMax)
			b.logf("    %d completed, %d failed (%d refused at admission); p50 %.2fs p99 %.2fs max %.2fs; peak RSS %.1f MiB, %d fds, %d procs; CPU %.3fs per backup (own %.2fs of %.2fs); %.2f API calls per backup; reports exactly once %v",
				r.Completed, r.Failed, r.RefusedAtAdmission, r.P50, r.P99, r.Max, r.PeakRSSMiB, r.PeakFDs, r.PeakProcs, r.CPUPerBackup, r.CPUOwnSeconds, r.CPUSeconds, r.APICallsPerBackup, r.ReportsExactlyOnce)
			out[srv.name].Nights = append(out[srv.name].Nights, r)
		}
	}
	for _, side := range out {
		side.summarise(n)
	}
	return out, nil
}

// volumeInMemory moves a storage side's volume (dir/vol) to tmpfs at
// target, its marker with it. Both sides then create their snapshots'
// files on tmpfs: on this shared machine's ext4, creating a file first
// scans for inodes not deleted in the last minutes (ext4's
// recently_deleted, up to a fifth of serve's samples in perf), which
// depends on whatever else just deleted files there and made the CPU per
// backup of whichever side ran first after the wipe look worse.
func volumeInMemory(dir, target string) error {
	vol := filepath.Join(dir, "vol")
	if fi, err := os.Lstat(vol); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return nil // already moved
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return err
	}
	marker, err := os.ReadFile(filepath.Join(vol, backup.MarkerFile))
	if err == nil {
		if err := os.WriteFile(filepath.Join(target, backup.MarkerFile), marker, 0o600); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.RemoveAll(vol); err != nil {
		return err
	}
	return os.Symlink(target, vol)
}

// machines returns the first n registered-machine candidates, making more
// than the 9,999 fillers when asked for.
func (b *bench) machines(n int) ([]*machine, error) {
	for i := len(b.filler); i < n; i++ {
		m := newMachine(i)
		b.filler = append(b.filler, &m)
	}
	return b.filler[:n], nil
}

// sessionResult is one agent's night.
type sessionResult struct {
	slotWait time.Duration // -1: unknown
	ok       bool
	exit     int
	refused  bool
	start    time.Time
	end      time.Time
	failure  string
	reported bool
}

// nightOnce runs one night of srv: every agent at its offset.
func (b *bench) nightOnce(ctx context.Context, srv server, night int, agents []*nightAgent, offsets []time.Duration, ports []int) (*nightRun, error) {
	for _, a := range agents {
		b.s.api.SetDue(a.m.uuid, nightSource, true)
	}
	// sshd needs its privilege separation directory for every
	// connection; bench/run.sh made it, but another run on the machine
	// that made it too may have removed it on its exit.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	pid := b.s.sshd.Process.Pid
	if srv.name == "ours" {
		pid = b.s.serve.Process.Pid
	}
	reqs0 := len(b.s.api.Requests(""))
	cpu0, own0 := cpuWithReaped(pid), cpuOwn(pid)
	samp := startSampler(pid, time.Second)

	results := make([]sessionResult, len(agents))
	var live, maxLive int
	var liveMu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(time.Until(start.Add(offsets[i]))):
			case <-ctx.Done():
				return
			}
			liveMu.Lock()
			live++
			maxLive = max(maxLive, live)
			liveMu.Unlock()
			results[i] = b.nightAgentRun(ctx, srv, night, a, ports[i])
			liveMu.Lock()
			live--
			liveMu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		samp.stop()
		return nil, err
	}
	// Reports go to the API after the session; wait for those of the
	// sessions that succeeded.
	var rwg sync.WaitGroup
	for i, a := range agents {
		if !results[i].ok {
			continue
		}
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			results[i].reported = b.reportedFor(a.m.uuid, nightSource, time.Minute)
		}()
	}
	rwg.Wait()
	last := time.Now()
	if srv.name == "openssh" {
		waitNoChildren(pid)
	}
	cpu, own := cpuWithReaped(pid)-cpu0, cpuOwn(pid)-own0
	peak := samp.stop()

	r := &nightRun{Night: night, MaxConcurrent: maxLive, WallSeconds: last.Sub(start).Seconds(),
		PeakRSSMiB: kib(peak.RSSKiB), PeakFDs: peak.FDs, PeakProcs: peak.Procs, CPUSeconds: cpu.Seconds(), CPUOwnSeconds: own.Seconds()}
	var durations []float64
	for i, res := range results {
		switch {
		case res.ok && res.reported:
			r.Completed++
			durations = append(durations, res.end.Sub(res.start).Seconds())
		default:
			r.Failed++
			r.failed = append(r.failed, i)
			why := res.failure
			if res.ok {
				why = "session succeeded but no successful report within a minute"
			}
			if len(r.Failures) < 20 {
				r.Failures = append(r.Failures, fmt.Sprintf("agent %d (%s, port %d): %s", i, agents[i].addr, ports[i], why))
			}
		}
		if res.refused {
			r.RefusedAtAdmission++
		}
	}
	var waits []float64
	for _, res := range results {
		if res.ok && res.slotWait > 100*time.Millisecond {
			waits = append(waits, res.slotWait.Seconds())
		}
	}
	r.SlotWaited = len(waits)
	r.SlotWaitP50, r.SlotWaitMax = quantile(waits, 0.5), quantile(waits, 1)
	if r.SlotWaitP50 > 0 {
		r.SlotWaitMaxOverP50 = r.SlotWaitMax / r.SlotWaitP50
	}
	r.durations = durations
	r.P50, r.P99, r.Max = quantile(durations, 0.5), quantile(durations, 0.99), quantile(durations, 1)
	if r.Completed > 0 {
		r.CPUPerBackup = r.CPUSeconds / float64(r.Completed)
	}

	// What the API saw: every call, and the successful reports per machine.
	reqs := b.s.api.Requests("")[reqs0:]
	byName := map[string]int{}
	reports := map[string]int{}
	for _, q := range reqs {
		byName[q.Call]++
		if q.Call == "storage_ping_source_update" && q.Status == 200 {
			m, _ := q.Body["machine"].(map[string]any)
			uuid, _ := m["uuid"].(string)
			srcs, _ := m["sources"].(map[string]any)
			if d, _ := srcs[nightSource].(map[string]any); d != nil {
				if ok, _ := d["success"].(bool); ok {
					reports[uuid]++
				}
			}
		}
	}
	r.APICalls, r.APICallsByName = len(reqs), byName
	if r.Completed > 0 {
		r.APICallsPerBackup = float64(len(reqs)) / float64(r.Completed)
	}
	for i, a := range agents {
		got := reports[a.m.uuid]
		want := 0
		if results[i].ok && results[i].reported {
			want = 1
		}
		switch {
		case got > want:
			r.Duplicates += got - want
		case got < want:
			r.Missing += want - got
		}
	}
	r.LeftSpooled = countSpooled(filepath.Join(srv.dir, "var", "reports"))
	r.ReportsExactlyOnce = r.Duplicates == 0 && r.Missing == 0 && r.LeftSpooled == 0
	return r, nil
}

// nightAgentRun is one agent's ping: its rsync daemon, its ssh session.
func (b *bench) nightAgentRun(ctx context.Context, srv server, night int, a *nightAgent, port int) sessionResult {
	var res sessionResult
	dir := filepath.Join(b.work, "night-rsyncd", srv.name, a.m.unit)
	mods := []agenttest.Module{{Name: nightSource, Path: a.tree, User: "agent", Password: a.password}}
	var started bool
	for try := range 3 {
		cmd, err := b.s.startRsyncd(ctx, dir, a.addr, port, mods)
		if err == nil {
			defer b.s.p.stop(cmd, 5*time.Second)
			started = true
			break
		}
		// The port is taken on the agent's address (an ephemeral port of
		// one of its own connections): turku-agent would fail this ping;
		// the server is not to blame, so draw another.
		port = 49152 + (port-49152+7919*(try+1))%(65535-49152+1)
	}
	if !started {
		res.failure = "agent's rsync daemon did not start"
		return res
	}
	creds := map[string]any{nightSource: map[string]string{"username": "agent", "password": a.password}}
	sess, err := b.s.startAgent(agentRun{
		serverPort: srv.port, m: a.m, fwdPort: port, fwdHost: a.addr,
		request: checkinRequest(port, creds),
		extra:   []string{"-b", a.addr},
	})
	if err != nil {
		res.failure = err.Error()
		return res
	}
	code, err := sess.wait(ctx, 10*time.Minute)
	res.start, res.end, res.exit = sess.start, sess.end, code
	stderr := sess.stderr.String()
	res.refused = strings.Contains(stderr, "kex_exchange_identification")
	switch {
	case err != nil:
		res.failure = err.Error()
	case code != 0 && res.refused:
		res.failure = fmt.Sprintf("ssh exit %d: %s", code, failureLines(stderr))
	case code != 0:
		// The daemon's log also shows waitListening's probe connection
		// ("connect from", then a reset): the lines after it tell.
		res.failure = fmt.Sprintf("ssh exit %d: %s; agent's rsyncd: %s", code, failureLines(stderr), daemonLog(dir))
	case !strings.Contains(stderr, "End: "+a.m.unit+" "+nightSource):
		res.failure = "no backup in the session: " + failureLines(stderr)
	default:
		res.ok = true
		res.slotWait = slotWait(stderr, a.m, srv.dir)
	}
	return res
}

// beginLineRE is the session log's "Begin: UNIT SOURCE" line with its
// time (sessionlog: "[2026-11-25 03:15:00,123 NAME] INFO: ...").
var beginLineRE = regexp.MustCompile(`\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) [^]]*\] INFO: Begin: `)

// slotWait is how long the backup waited between its Begin line and
// rsync's start, read from the new snapshot's .json; -1 when unknown.
func slotWait(stderr string, m *machine, storageDir string) time.Duration {
	mm := beginLineRE.FindStringSubmatch(stderr)
	if mm == nil {
		return -1
	}
	begin, err := time.ParseInLocation("2006-01-02 15:04:05,000", mm[1], time.Local)
	if err != nil {
		return -1
	}
	snaps := filepath.Join(storageDir, "var", "machines", m.uuid, nightSource+".snapshots")
	latest, err := os.Readlink(filepath.Join(snaps, "latest"))
	if err != nil {
		return -1
	}
	data, err := os.ReadFile(filepath.Join(snaps, latest+".json"))
	if err != nil {
		return -1
	}
	var info struct {
		SyncBegin string `json:"sync_begin"`
	}
	if json.Unmarshal(data, &info) != nil {
		return -1
	}
	t, err := time.Parse(time.RFC3339Nano, info.SyncBegin)
	if err != nil {
		return -1
	}
	return t.Sub(begin)
}

// cpuOwn is the CPU time pid itself used: utime and stime.
func cpuOwn(pid int) time.Duration { return statTicks(pid, 11, 12) }

// daemonLog is the end of an agent's rsync daemon log, for a failure.
func daemonLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "rsyncd.log"))
	return lastLines(string(b), 3)
}

// countSpooled counts the reports waiting in a storage side's spool.
func countSpooled(dir string) int {
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

// quantile is the q-quantile of xs (nearest rank), 0 when empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// summarise fills the totals over both nights.
func (side *nightSide) summarise(n int) {
	failed := map[int]bool{}
	side.ReportsExactlyOnce = len(side.Nights) > 0
	var cpu float64
	var calls, backups int
	var durations []float64
	for _, r := range side.Nights {
		side.RefusedAtAdmission += r.RefusedAtAdmission
		side.PeakRSSMiB = max(side.PeakRSSMiB, r.PeakRSSMiB)
		side.PeakFDs = max(side.PeakFDs, r.PeakFDs)
		side.ReportsExactlyOnce = side.ReportsExactlyOnce && r.ReportsExactlyOnce
		cpu += r.CPUSeconds
		calls += r.APICalls
		backups += r.Completed
		durations = append(durations, r.durations...)
		for _, i := range r.failed {
			failed[i] = true
		}
	}
	side.Failed = len(failed)
	side.Completed = n - side.Failed
	side.P50, side.P99 = quantile(durations, 0.5), quantile(durations, 0.99)
	if backups > 0 {
		side.CPUPerBackup = cpu / float64(backups)
		side.APICallsPerBackup = float64(calls) / float64(backups)
	}
}

// sampler follows a process tree's peak memory and descriptors.
type sampler struct {
	stopCh chan struct{}
	done   chan procState
}

func startSampler(pid int, every time.Duration) *sampler {
	s := &sampler{stopCh: make(chan struct{}), done: make(chan procState, 1)}
	go func() {
		var peak procState
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			st := serverState(pid)
			peak.RSSKiB = max(peak.RSSKiB, st.RSSKiB)
			peak.PSSKiB = max(peak.PSSKiB, st.PSSKiB)
			peak.FDs = max(peak.FDs, st.FDs)
			peak.Procs = max(peak.Procs, st.Procs)
			select {
			case <-t.C:
			case <-s.stopCh:
				s.done <- peak
				return
			}
		}
	}()
	return s
}

func (s *sampler) stop() procState {
	close(s.stopCh)
	return <-s.done
}

// makeNightTrees writes nightBaseTrees trees of nightFilesPerAgent files
// and gives each agent its own tree of hard links to one of them (the
// agents' data differ where the nights change them). It returns the
// agents and the bytes of all trees together.
func makeNightTrees(dir string, ms []*machine) ([]*nightAgent, int64, error) {
	var baseSize [nightBaseTrees]int64
	for t := range nightBaseTrees {
		size, err := variedFiles(filepath.Join(dir, "base", strconv.Itoa(t)), nightFilesPerAgent, uint64(100+t))
		if err != nil {
			return nil, 0, err
		}
		baseSize[t] = size
	}
	var agents []*nightAgent
	var total int64
	for i, m := range ms {
		t := i % nightBaseTrees
		base := filepath.Join(dir, "base", strconv.Itoa(t))
		tree := filepath.Join(dir, "agents", m.unit)
		if err := linkTree(base, tree); err != nil {
			return nil, 0, err
		}
		agents = append(agents, &nightAgent{m: m, addr: nightAddr(i), tree: tree,
			password: fmt.Sprintf("%016x", rand.Uint64())})
		total += baseSize[t]
	}
	return agents, total, nil
}

// variedFiles writes n files of 1-6 KiB of random bytes under dir, 30 to
// a directory.
func variedFiles(dir string, n int, seed uint64) (int64, error) {
	rng := rand.New(rand.NewPCG(seed, 2))
	data := rand.NewChaCha8([32]byte{byte(seed), 2})
	return randomFiles(dir, n, rng, data, 5*1024, 30, func(i int) string {
		return filepath.Join(fmt.Sprintf("d%02d", i/30), fmt.Sprintf("f%04d", i))
	})
}

// linkTree makes dst a copy of src's directories with every file a hard
// link to src's.
func linkTree(src, dst string) error {
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return os.Link(path, target)
	})
	if err != nil {
		return err
	}
	return fixTimes(dst)
}

// changeNightTrees rewrites nightChangedFiles files of every tree (a new
// file renamed over the link, as an editor saves) and adds one, for
// night.
func changeNightTrees(agents []*nightAgent, night int) error {
	buf := make([]byte, 4<<10)
	for i, a := range agents {
		data := rand.NewChaCha8([32]byte{byte(night), byte(i), byte(i >> 8), byte(i >> 16)})
		for k := range nightChangedFiles {
			f := (i*7 + k*29) % nightFilesPerAgent
			path := filepath.Join(a.tree, fmt.Sprintf("d%02d", f/30), fmt.Sprintf("f%04d", f))
			_, _ = data.Read(buf)
			if err := os.WriteFile(path+".new", buf, 0o644); err != nil {
				return err
			}
			if err := os.Rename(path+".new", path); err != nil {
				return err
			}
		}
		_, _ = data.Read(buf)
		if err := os.WriteFile(filepath.Join(a.tree, fmt.Sprintf("night%d.log", night)), buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}
