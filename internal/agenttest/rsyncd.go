package agenttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is host:port.
func (d *Daemon) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// StartRsyncd starts `rsync --daemon --no-detach` on host at a free port.
func StartRsyncd(t testing.TB, host string, modules []Module) *Daemon {
	t.Helper()
	var lastErr error
	for range 20 {
		port, err := freePort(host)
		if err != nil {
			t.Fatal(err)
		}
		d, err := StartRsyncdOnPort(t, host, port, modules)
		if err == nil {
			return d
		}
		lastErr = err // another process took the port in between: retry
	}
	t.Fatalf("start rsync daemon: %v", lastErr)
	return nil
}

// StartRsyncdOnPort starts an rsync daemon on host:port; it returns an
// error when rsync could not bind.
func StartRsyncdOnPort(t testing.TB, host string, port int, modules []Module) (*Daemon, error) {
	t.Helper()
	dir := t.TempDir()
	var conf, secrets strings.Builder
	fmt.Fprintf(&conf, "address = %s\nport = %d\nlog file = %s\nlist = false\nuse chroot = false\n",
		host, port, filepath.Join(dir, "rsyncd.log"))
	if os.Geteuid() == 0 {
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
		t.Fatal(err)
	}
	if err := os.WriteFile(secretsFile, []byte(secrets.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rsync", "--no-detach", "--daemon", "--config="+confFile)
	var out Output
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rsync daemon: %v", err)
	}
	d := &Daemon{Host: host, Port: port, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	// Ready when it accepts a connection; gone when it exits (bind failed).
	for {
		c, err := net.DialTimeout("tcp", d.Addr(), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-d.done:
			log, _ := os.ReadFile(filepath.Join(dir, "rsyncd.log"))
			return nil, fmt.Errorf("rsync daemon on %s exited: %s %s", d.Addr(), out.String(), log)
		case <-time.After(10 * time.Millisecond):
			// Polling a port that is not listening yet: rsync gives no
			// readiness signal of its own.
		}
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-d.done
		}
		if log, err := os.ReadFile(filepath.Join(dir, "rsyncd.log")); err == nil && len(log) > 0 {
			t.Logf("rsyncd %s log:\n%s", d.Addr(), log)
		}
	})
	return d, nil
}

// freePort asks the kernel for a free port on host.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// FreePort returns a port that was free on host a moment ago.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	p, err := freePort(host)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
