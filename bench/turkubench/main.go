//go:build bench

// Command turkubench measures `turku-storage serve` against OpenSSH's sshd
// running `turku-storage ping` as the forced command, both driven by the
// same agent side: the real ssh client with turku-agent's flags and a real
// rsync daemon. bench/run.sh builds and runs it; docs/benchmarks.md has the
// results and says what each figure means.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// portSeed is the smallest seed for which drawPorts gives two pairs of the
// 50 agents the same port (seeds below it give at most one).
const portSeed = 150

// nightSeed draws the ports of (f): no two agents share one, as on a
// night where all goes well.
const nightSeed = 1

type bench struct {
	s    *site
	work string
	out  string
	logf func(string, ...any)

	agent  *machine   // the measured agent
	filler []*machine // other registered machines, 9,999
	fleet  []*machine // agents of (d) and (e), taken from filler

	datasets  []dataset
	fleetData string
	only      string // servers() returns only this side, if set
	// machinesSet: concurrent leaves the registered machines alone.
	machinesSet bool
	rsyncdPID   int // the agent's rsync daemon in (c)
}

type dataset struct {
	name, desc, dir string
	files           int
	bytes           int64
}

// stat is one figure measured several times.
type stat struct {
	Unit    string
	Runs    []float64
	Errors  []string `json:",omitempty"`
	Refused string   `json:",omitempty"`
}

func (s *stat) add(v float64) { s.Runs = append(s.Runs, v) }

// Median of the runs (the mean of the middle two for an even count).
func (s *stat) Median() float64 {
	if len(s.Runs) == 0 {
		return 0
	}
	r := slices.Clone(s.Runs)
	slices.Sort(r)
	if len(r)%2 == 1 {
		return r[len(r)/2]
	}
	return (r[len(r)/2-1] + r[len(r)/2]) / 2
}

func (s *stat) Min() float64 { return slices.Min(s.Runs) }
func (s *stat) Max() float64 { return slices.Max(s.Runs) }

// results is everything one invocation measured; it goes to results.json.
type results struct {
	Started    time.Time
	Finished   time.Time
	Quick      bool
	Env        map[string]string
	Algorithms map[string]string
	RoundTrip  map[string]map[string]*stat // "1", "10000" -> side
	Throughput map[string]map[string]*stat // cipher -> side
	Backups    map[string]map[string]*stat // "A full" ... -> side
	FleetOK    map[string]*stat
	FleetWall  map[string]*stat
	FleetPorts []int
	FleetColl  int
	NightOK    map[string]*stat
	NightWall  map[string]*stat
	NightCPU   map[string]*stat
	NightPorts []int
	Memory     map[string]memResult
	Attack     map[string]*attackResult
	// Night is (h): the night of many agents, per side.
	Night map[string]*nightSide `json:"night,omitempty"`
	// Burst is (h)'s burst of agents at one moment.
	Burst *burstResult `json:"burst,omitempty"`
	// Scale is (h)'s round trip and memory with many machines.
	Scale    *scaleResult `json:"scale,omitempty"`
	Params   map[string]any
	Datasets []dataset
}

func main() {
	var (
		bin    = flag.String("bin", "", "turku-storage binary (built from ./cmd/turku-storage)")
		work   = flag.String("work", "", "scratch directory (datasets, configs, storage); must exist")
		out    = flag.String("out", "bench/out", "where results.json and results.md go")
		quick  = flag.Bool("quick", false, "fewer runs and smaller data")
		only   = flag.String("only", "a,b,c,d,e,f,g", "measurements to run (h, the night, only when named)")
		agents = flag.Int("agents", 0, "(h): agents in the night (0: 1,000, or 200 with -quick)")
		window = flag.Duration("window", 0, "(h): the window the agents arrive in (0: 10m, or 2m with -quick)")
		scale  = flag.Int("scale", 100000, "(h): machines registered for the round trip and idle memory at scale (0: skip)")
		env    = flag.String("serve-env", "", "extra environment for serve only, space-separated VAR=VALUE (e.g. GOGC=400), to try runtime settings")
		hold   = flag.Bool("hold", false, "set up both servers with one agent, print how to reach them, and wait for a signal (for profiling by hand)")
	)
	flag.Parse()
	if *bin == "" || *work == "" {
		fmt.Fprintln(os.Stderr, "usage: turkubench -bin TURKU_STORAGE -work DIR [-out DIR] [-quick] [-only a,b,c,d,e,f,g,h] [-agents N] [-window D] [-hold]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *work, *out, *quick, *only, *hold, strings.Fields(*env), *agents, *window, *scale); err != nil {
		fmt.Fprintln(os.Stderr, "turkubench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, work, out string, quick bool, only string, hold bool, serveEnv []string, agents int, window time.Duration, scale int) error {
	bin, _ = filepath.Abs(bin)
	work, _ = filepath.Abs(work)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	p := newProcs(filepath.Join(work, "pids"))
	defer p.stopAll()
	s, err := newSite(work, bin, p, logf)
	if err != nil {
		return err
	}
	defer s.close()
	s.serveEnv = serveEnv
	b := &bench{s: s, work: work, out: out, logf: logf}

	// Parameters: full run, or --quick.
	par := map[string]any{
		"roundtrip_runs": 15, "runs": 5, "tunnel_bytes": int64(1 << 30),
		"small_files": 20000, "big_files": 4, "big_size": int64(256 << 20),
		"fleet": 50, "fleet_files": 500, "fleet_runs": 5, "mem_sessions": 50,
		"mem_settle": 150 * time.Second, "backup_runs": 7, "night_agents": 4, "night_runs": 3,
		"h_agents": 1000, "h_window": 10 * time.Minute,
	}
	if quick {
		par = map[string]any{
			"roundtrip_runs": 5, "runs": 3, "tunnel_bytes": int64(256 << 20),
			"small_files": 5000, "big_files": 4, "big_size": int64(64 << 20),
			"fleet": 50, "fleet_files": 200, "fleet_runs": 1, "mem_sessions": 10,
			"mem_settle": time.Duration(0), "backup_runs": 3, "night_agents": 4, "night_runs": 1,
			"h_agents": 200, "h_window": 2 * time.Minute,
		}
	}
	if agents > 0 {
		par["h_agents"] = agents
	}
	if window > 0 {
		par["h_window"] = window
	}
	par["h_files_per_agent"], par["h_changed_files"] = nightFilesPerAgent, nightChangedFiles
	res := &results{Started: time.Now(), Quick: quick, Params: par, Env: environment()}
	if len(serveEnv) > 0 {
		res.Env["serve environment"] = strings.Join(serveEnv, " ")
	}

	logf("generating machine keys")
	agent := newMachine(99999)
	b.agent = &agent
	if err := b.agent.writeKey(s.keyDir); err != nil {
		return err
	}
	for i := range 9999 {
		m := newMachine(i)
		b.filler = append(b.filler, &m)
	}
	b.fleet = b.filler[:par["fleet"].(int)]

	logf("starting OpenSSH sshd on %s and serve on %s", s.sshdAddr(), s.serveAddr())
	if err := s.startSSHD(ctx); err != nil {
		return err
	}
	if err := s.setMachines(ctx, []*machine{b.agent}); err != nil {
		return err
	}
	if res.Algorithms, err = b.probeAlgorithms(ctx); err != nil {
		return err
	}
	if hold {
		port, _ := agenttest.PickFreePort("127.0.0.1")
		r := agentRun{m: b.agent, fwdPort: port, fwdHost: "127.0.0.2"}
		fmt.Printf("serve pid %d, sshd pid %d; an agent session (append -p %d for ours, -p %d for OpenSSH; then type the request and a \".\" line):\nssh %s\n",
			s.serve.Process.Pid, s.sshd.Process.Pid, s.servePort, s.sshdPort, strings.Join(r.args(s.knownHosts)[:len(r.args(s.knownHosts))-6], " "))
		fmt.Printf("request: {\"verbose\": true, \"port\": %d}\n", port)
		<-ctx.Done()
		return nil
	}
	has := func(x string) bool { return slices.Contains(strings.Split(only, ","), x) }

	if has("a") || has("e") {
		res.RoundTrip = map[string]map[string]*stat{}
		for _, n := range []int{1, 10000} {
			if !has("a") && n == 1 {
				continue
			}
			logf("(a) session round trip, %d registered machines", n)
			r, err := b.roundTrip(ctx, n, par["roundtrip_runs"].(int))
			if err != nil {
				return err
			}
			res.RoundTrip[fmt.Sprint(n)] = r
			logf("  ours %.1f ms, openssh %.1f ms", r["ours"].Median(), r["openssh"].Median())
		}
		if has("e") {
			logf("(e) memory with 10,000 machines")
			if res.Memory, err = b.memory(ctx, par["mem_sessions"].(int), par["mem_settle"].(time.Duration)); err != nil {
				return err
			}
		}
	}
	if has("b") {
		if err := s.setMachines(ctx, []*machine{b.agent}); err != nil {
			return err
		}
		res.Throughput = map[string]map[string]*stat{}
		for _, c := range []string{"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"} {
			logf("(b) tunnel throughput, %s", c)
			r, err := b.throughput(ctx, c, par["tunnel_bytes"].(int64), par["runs"].(int))
			if err != nil {
				return err
			}
			res.Throughput[c] = r
			logf("  ours %.0f MiB/s %s, openssh %.0f MiB/s %s", r["ours"].Median(), r["ours"].Refused, r["openssh"].Median(), r["openssh"].Refused)
		}
	}
	if has("c") || has("d") || has("f") || has("g") {
		if err := b.makeDatasets(par); err != nil {
			return err
		}
		res.Datasets = b.datasets
	}
	if has("c") {
		logf("(c) backups")
		if res.Backups, err = b.backups(ctx, par["backup_runs"].(int)); err != nil {
			return err
		}
	}
	if has("d") {
		n := par["fleet"].(int)
		ports, coll := drawPorts(portSeed, n)
		logf("(d) %d agents at once, port seed %d: %d collisions", n, portSeed, coll)
		res.FleetPorts, res.FleetColl = ports, coll
		if res.FleetOK, res.FleetWall, _, err = b.concurrent(ctx, n, portSeed, par["fleet_runs"].(int)); err != nil {
			return err
		}
	}
	if has("f") {
		n := par["night_agents"].(int)
		ports, coll := drawPorts(nightSeed, n)
		if coll > 0 {
			return fmt.Errorf("(f) port seed %d draws %d collisions", nightSeed, coll)
		}
		logf("(f) a real night: %d agents backing up dataset B (%d bytes) each, at once", n, b.datasets[1].bytes)
		if res.NightOK, res.NightWall, res.NightCPU, _, err = b.atOnce(ctx, "night", b.datasets[1].dir, n, nightSeed, par["night_runs"].(int)); err != nil {
			return err
		}
		res.NightPorts = ports
	}
	if has("g") {
		logf("(g) under attack: %d idle connections from %s, key probes from %s", floodConns, floodSource, probeSource)
		if err := s.setSSHDMaxStartups(ctx, "10:30:100"); err != nil {
			return err
		}
		gp := attackParamsFor(quick)
		par["g"] = gp
		if res.Attack, err = b.attack(ctx, par["runs"].(int), gp); err != nil {
			return err
		}
	}
	if has("h") {
		n, w := par["h_agents"].(int), par["h_window"].(time.Duration)
		logf("(h) the night: %d agents over %v, two nights; sshd with its default MaxStartups 10:30:100", n, w)
		if err := s.setSSHDMaxStartups(ctx, "10:30:100"); err != nil {
			return err
		}
		if res.Night, err = b.night(ctx, n, w); err != nil {
			return err
		}
		logf("(h) a burst of %d agents at one moment, first-time (serve restarted) and known", min(n, burstAgents))
		if res.Burst, err = b.burst(ctx, b.filler[:n], burstAgents); err != nil {
			return err
		}
		if scale > 0 {
			logf("(h) at scale: round trip with 1,000 and %d machines, idle memory", scale)
			if res.Scale, err = b.scale(ctx, scale, par["roundtrip_runs"].(int), par["mem_settle"].(time.Duration)); err != nil {
				return err
			}
		}
	}
	res.Finished = time.Now()
	data, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "results.json"), data, 0o644); err != nil {
		return err
	}
	md := report(res)
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	logf("done in %s; results in %s", res.Finished.Sub(res.Started).Round(time.Second), out)
	return nil
}

func (b *bench) makeDatasets(par map[string]any) error {
	dir := filepath.Join(b.work, "data")
	b.logf("generating datasets under %s", dir)
	nA := par["small_files"].(int)
	sizeA, err := smallFiles(filepath.Join(dir, "A"), nA, 1)
	if err != nil {
		return err
	}
	nB, sz := par["big_files"].(int), par["big_size"].(int64)
	sizeB, err := bigFiles(filepath.Join(dir, "B"), nB, sz, 2)
	if err != nil {
		return err
	}
	b.fleetData = filepath.Join(dir, "fleet")
	nF := par["fleet_files"].(int)
	sizeF, err := smallFiles(b.fleetData, nF, 3)
	if err != nil {
		return err
	}
	b.datasets = []dataset{
		{name: "A", desc: fmt.Sprintf("%d files of 1-4 KiB, nested", nA), dir: filepath.Join(dir, "A"), files: nA, bytes: sizeA},
		{name: "B", desc: fmt.Sprintf("%d files of %d MiB random", nB, sz>>20), dir: filepath.Join(dir, "B"), files: nB, bytes: sizeB},
	}
	b.logf("  A %d files %d bytes; B %d files %d bytes; fleet %d files %d bytes", nA, sizeA, nB, sizeB, nF, sizeF)
	return nil
}

var kexLineRE = regexp.MustCompile(`debug1: (kex: algorithm|kex: host key algorithm|kex: server->client cipher|kex: client->server cipher): (.*)`)

// probeAlgorithms runs one verbose session against each server and notes
// what the agent's ssh negotiated with it by default.
func (b *bench) probeAlgorithms(ctx context.Context) (map[string]string, error) {
	port, err := agenttest.PickFreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, srv := range b.servers() {
		_, stderr, err := b.s.runAgent(ctx, agentRun{
			serverPort: srv.port, m: b.agent, fwdPort: port, fwdHost: "127.0.0.2", extra: []string{"-v"},
			request: checkinRequest(port, map[string]any{}),
		}, time.Minute)
		if err != nil {
			return nil, fmt.Errorf("%s probe: %w", srv.name, err)
		}
		var parts []string
		for _, m := range kexLineRE.FindAllStringSubmatch(stderr, -1) {
			parts = append(parts, m[1]+": "+strings.TrimSpace(m[2]))
		}
		out[srv.name] = strings.Join(parts, "; ")
		b.logf("  %s negotiates %s", srv.name, out[srv.name])
	}
	return out, nil
}

func environment() map[string]string {
	env := map[string]string{"go": runtime.Version(), "cpus": fmt.Sprint(runtime.NumCPU())}
	run := func(key string, name string, args ...string) {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err == nil {
			env[key] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	run("ssh", "ssh", "-V")
	run("rsync", "rsync", "--version")
	run("kernel", "uname", "-sr")
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				env["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			for _, k := range []string{"Model name:", "Vendor ID:", "CPU family:", "Model:", "Hypervisor vendor:", "Flags:"} {
				if v, ok := strings.CutPrefix(l, k); ok && k != "Flags:" {
					env["lscpu "+strings.TrimSuffix(k, ":")] = strings.TrimSpace(v)
				} else if ok {
					env["aes-ni"] = fmt.Sprint(strings.Contains(v, " aes "))
				}
			}
		}
	}
	return env
}
