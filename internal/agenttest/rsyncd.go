package agenttest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Module is one rsync daemon module, as turku-agent writes them: one per
// source (read only) and optionally a writable restore module.
type Module struct {
	Name     string
	Path     string
	User     string
	Password string
	Writable bool
}

// Daemon is a running rsync daemon.
type Daemon struct {
	Host string
	Port int
	log  Output // stdout, stderr and the daemon's log file
	proc *process
}

// Addr is host:port.
func (d *Daemon) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// Log is what the daemon logged so far: one line per connection and
// transfer, and its errors.
func (d *Daemon) Log() *Output { return &d.log }

// StartRsyncd starts `rsync --daemon --no-detach` on host at a free port.
// daemonArgs are added to the daemon's command line (e.g. --bwlimit=RATE,
// which caps what the daemon sends, as an agent on a slow link would).
func StartRsyncd(t testing.TB, host string, modules []Module, daemonArgs ...string) *Daemon {
	t.Helper()
	return StartRsyncdPerHost(t, map[string][]Module{host: modules}, daemonArgs...)[host]
}

// StartRsyncdPerHost starts a daemon on each host with its modules, all on
// one free port, as agents on different machines that picked the same
// port would run them. It returns the daemons by host.
func StartRsyncdPerHost(t testing.TB, modules map[string][]Module, daemonArgs ...string) map[string]*Daemon {
	t.Helper()
	hosts := slices.Sorted(maps.Keys(modules))
	var lastErr error
	for range 20 {
		port := FreePort(t, hosts[0])
		daemons := map[string]*Daemon{}
		for _, host := range hosts {
			d, err := StartRsyncdOnPort(t, host, port, modules[host], daemonArgs...)
			if err != nil {
				lastErr = err // another process took the port in between: retry
				break
			}
			daemons[host] = d
		}
		if len(daemons) == len(hosts) {
			return daemons
		}
		for _, d := range daemons {
			d.proc.stop()
		}
	}
	t.Fatalf("start rsync daemon: %v", lastErr)
	return nil
}

// StartRsyncdOnPort starts an rsync daemon on host:port; it returns an
// error when rsync could not bind, and fails the test on anything else.
func StartRsyncdOnPort(t testing.TB, host string, port int, modules []Module, daemonArgs ...string) (*Daemon, error) {
	t.Helper()
	confFile, err := WriteRsyncdConfig(t.TempDir(), host, port, "/dev/stderr", modules)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Host: host, Port: port}
	cmd := exec.Command("rsync", append([]string{"--no-detach", "--daemon", "--config=" + confFile}, daemonArgs...)...)
	cmd.Env = Env(t)
	cmd.Stdout = &d.log
	cmd.Stderr = &d.log
	proc, err := start(cmd, &d.log)
	if err != nil {
		t.Fatalf("start rsync daemon: %v", err)
	}
	d.proc = proc
	// Ready once a probe connection shows up in its log: a connection
	// alone may have reached whoever else holds the port, and then the
	// daemon exits as it cannot bind. rsync gives no readiness signal of
	// its own, so this polls until one or the other happens.
	for d.log.Count("connect from ") == 0 {
		if c, err := net.DialTimeout("tcp", d.Addr(), time.Second); err == nil {
			c.Close()
		}
		select {
		case <-proc.done:
			return nil, fmt.Errorf("rsync daemon on %s exited (%v): %s", d.Addr(), proc.err, d.log.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		proc.stop()
		if log := d.log.String(); log != "" {
			t.Logf("rsyncd %s log:\n%s", d.Addr(), log)
		}
	})
	return d, nil
}

// WriteRsyncdConfig writes rsyncd.conf and its secrets file into dir the
// way turku-agent writes them, for a daemon on host:port logging to
// logFile, and returns the configuration's path. The log file of the
// tests' daemons is their stderr (the daemon does not detach), so that a
// test sees and can wait for what the daemon logs; bench/ gives a file.
func WriteRsyncdConfig(dir, host string, port int, logFile string, modules []Module) (string, error) {
	var conf, secrets strings.Builder
	fmt.Fprintf(&conf, "address = %s\nport = %d\nlog file = %s\nlist = false\nuse chroot = false\n",
		host, port, logFile)
	if os.Geteuid() == 0 { // else the daemon would switch to nobody
		conf.WriteString("uid = root\ngid = root\n")
	}
	conf.WriteString("\n")
	secretsFile := filepath.Join(dir, "rsyncd.secrets")
	for _, m := range modules {
		fmt.Fprintf(&conf, "[%s]\n    path = %s\n    auth users = %s\n    secrets file = %s\n    read only = %t\n\n",
			m.Name, m.Path, m.User, secretsFile, !m.Writable)
		fmt.Fprintf(&secrets, "%s:%s\n", m.User, m.Password)
	}
	confFile := filepath.Join(dir, "rsyncd.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(secretsFile, []byte(secrets.String()), 0o600); err != nil {
		return "", err
	}
	return confFile, nil
}

// PickFreePort returns a free port on host picked as turku-agent picks
// its port (ping.py: random in 49152-65535, the range the storage unit's
// tunnel_port_range admits by default), not the kernel's choice, which
// may lie below it. Tests use FreePort; bench/, which has no testing.TB,
// this.
func PickFreePort(host string) (int, error) {
	var err error
	for range 100 {
		port := 49152 + rand.IntN(65535-49152+1)
		var ln net.Listener
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
			ln.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port in 49152-65535 on %s: %w", host, err)
}

// FreePort returns a port that was free on host a moment ago.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	p, err := PickFreePort(host)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
