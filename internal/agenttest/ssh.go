package agenttest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Key is an agent's SSH key pair on disk.
type Key struct {
	Path   string // private key, OpenSSH format, 0600
	Signer gossh.Signer
	// Authorized is the public key in authorized_keys form, as turku-api
	// hands it out in ssh_public_key.
	Authorized string
}

// NewKey creates an ed25519 key pair in a temporary directory.
func NewKey(t testing.TB) Key {
	t.Helper()
	priv, signer := newEd25519(t)
	block, err := gossh.MarshalPrivateKey(priv, "agent")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey())))
	return Key{Path: path, Signer: signer, Authorized: auth}
}

// NewSigner returns a signer of a new ed25519 key, kept in memory only:
// an agent's key or a host key for an in-process client or server.
func NewSigner(t testing.TB) gossh.Signer {
	t.Helper()
	_, signer := newEd25519(t)
	return signer
}

func newEd25519(t testing.TB) (ed25519.PrivateKey, gossh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, signer
}

// Ping describes one `ssh ... turku-ping-remote` run.
type Ping struct {
	// Host and Port of the storage unit's SSH server.
	Host string
	Port int
	User string
	Key  Key
	// HostKeys are the advertised ssh_ping_host_keys; they become the
	// temporary known_hosts as "HOST KEY" lines, as the agent writes them.
	HostKeys []string
	// ForwardPort and ForwardTarget make -R PORT:TARGET:PORT.
	ForwardPort   int
	ForwardTarget string
	// Request is written as JSON followed by a "." line. RequestText, if
	// set instead, is written as is: the agent's own json.dumps bytes, or
	// a request that is not JSON at all.
	Request     any
	RequestText string
	// ExtraArgs go before the host (e.g. "-L" to test refusals, "-vvv" to
	// see what ssh negotiated).
	ExtraArgs []string
}

// Session is a running ssh client.
type Session struct {
	proc   *process
	stdin  io.WriteCloser
	stdout Output
	stderr Output
}

// Args returns the agent's exact ssh command line for p (turku-agent
// ping.py call_ssh), plus the isolation a test needs: no user config, no
// ssh-agent keys.
func (p Ping) Args(knownHosts string) []string {
	args := []string{
		"-F", "none", "-o", "IdentitiesOnly=yes",
		"-T", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "CheckHostIP=no",
		"-i", p.Key.Path,
	}
	if p.ForwardPort != 0 {
		target := p.ForwardTarget
		if target == "" {
			target = "127.0.0.1"
		}
		args = append(args, "-R", fmt.Sprintf("%d:%s:%d", p.ForwardPort, target, p.ForwardPort))
	}
	args = append(args, p.ExtraArgs...)
	return append(args, "-p", strconv.Itoa(p.Port), "-l", p.User, p.Host, "turku-ping-remote")
}

// Start runs ssh and writes the request; stdin stays open, as the agent
// keeps it, until CloseStdin or the server ends the session. When the test
// ends, ssh is stopped if still running and its output goes to t.Log.
func (p Ping) Start(t testing.TB) *Session {
	t.Helper()
	request := []byte(p.RequestText)
	if p.Request != nil {
		if p.RequestText != "" {
			t.Fatal("agenttest.Ping: both Request and RequestText set")
		}
		data, err := json.Marshal(p.Request)
		if err != nil {
			t.Fatal(err)
		}
		request = append(data, "\n.\n"...)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	var b strings.Builder
	for _, k := range p.HostKeys {
		fmt.Fprintf(&b, "%s %s\n", p.Host, k)
	}
	if err := os.WriteFile(kh, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Session{}
	cmd := exec.Command("ssh", p.Args(kh)...)
	cmd.Env = Env(t)
	cmd.Stdout = &s.stdout
	cmd.Stderr = &s.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.stdin = stdin
	s.proc, err = start(cmd, &s.stdout, &s.stderr)
	if err != nil {
		t.Fatalf("start ssh: %v", err)
	}
	t.Cleanup(func() {
		s.proc.stop()
		t.Logf("ssh %s@%s:%d: %v; stdout:\n%s\nstderr:\n%s", p.User, p.Host, p.Port, s.proc.err, s.stdout.String(), s.stderr.String())
	})
	if len(request) > 0 {
		// A failed write means ssh already exited; Wait reports why.
		_, _ = s.stdin.Write(request)
	}
	return s
}

// CloseStdin ends the agent's side (what Ctrl-C on a restore does).
func (s *Session) CloseStdin() { _ = s.stdin.Close() }

// Done is closed when ssh exits.
func (s *Session) Done() <-chan struct{} { return s.proc.done }

// Result is how an ssh run ended.
type Result struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// Wait waits for ssh to exit, at most timeout.
func (s *Session) Wait(t testing.TB, timeout time.Duration) Result {
	t.Helper()
	select {
	case <-s.proc.done:
	case <-time.After(timeout):
		_ = s.proc.cmd.Process.Kill()
		<-s.proc.done
		t.Fatalf("ssh did not finish within %v; stderr:\n%s", timeout, s.stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(s.proc.err, &ee) {
		code = ee.ExitCode()
	} else if s.proc.err != nil {
		t.Fatalf("ssh: %v", s.proc.err)
	}
	return Result{ExitCode: code, Stdout: s.stdout.String(), Stderr: s.stderr.String()}
}

// Stdout is what ssh printed on stdout so far (the storage unit writes
// its log lines on stderr).
func (s *Session) Stdout() *Output { return &s.stdout }

// Stderr is what ssh printed so far (the storage unit's log lines).
func (s *Session) Stderr() *Output { return &s.stderr }
