package sshserver

import (
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

const hostKeyWarning = "client closed the connection after receiving our host key"

// TestHostKeyRejectionLogged: the real ssh, holding another host key for
// the server in its known_hosts, fails with "Host key verification failed"
// and says nothing on the wire; the server logs that at WARN with the
// client's address and the key it presented. ssh-keyscan, which closes at
// the same point on purpose, and a client that trusts the key but is
// refused, are not reported.
func TestHostKeyRejectionLogged(t *testing.T) {
	requireTools(t)
	if _, err := exec.LookPath("ssh-keyscan"); err != nil {
		t.Skip("ssh-keyscan not installed")
	}
	log := &agenttest.Output{}
	ts := startServer(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	t.Cleanup(func() { t.Logf("server log:\n%s", log.String()) })
	addr := netip.MustParseAddrPort(ts.addr)
	stranger := agenttest.NewKey(t) // not a machine's key: refused after the handshake

	// Ends each connection by waiting for its end in the server log.
	ended := 0
	waitEnded := func() {
		t.Helper()
		ended++
		log.WaitFor(t, "connection failed", ended, e2eWait)
	}

	scan := exec.Command("ssh-keyscan", "-p", strconv.Itoa(int(addr.Port())), "-t", "ed25519", addr.Addr().String())
	scan.Env = agenttest.Env(t)
	out, err := scan.Output()
	if err != nil || !strings.Contains(string(out), AuthorizedKey(ts.hostKey)) {
		t.Fatalf("ssh-keyscan: %v, %q; want our host key", err, out)
	}
	waitEnded()

	trusting := agenttest.Ping{
		Host: addr.Addr().String(), Port: int(addr.Port()), User: testUser,
		Key: stranger, HostKeys: []string{AuthorizedKey(ts.hostKey)},
		RequestText: "{}\n.\n",
	}.Start(t).Wait(t, e2eWait)
	if trusting.ExitCode != 255 || !strings.Contains(trusting.Stderr, "Permission denied") {
		t.Fatalf("trusted host key, unknown user key: exit %d, want 255 Permission denied", trusting.ExitCode)
	}
	waitEnded()
	if n := log.Count(hostKeyWarning); n != 0 {
		t.Fatalf("got %d host key warnings after ssh-keyscan and a refused login, want 0", n)
	}

	other := agenttest.NewSigner(t)
	res := agenttest.Ping{
		Host: addr.Addr().String(), Port: int(addr.Port()), User: testUser,
		Key: stranger, HostKeys: []string{AuthorizedKey(other)},
		RequestText: "{}\n.\n",
	}.Start(t).Wait(t, e2eWait)
	if res.ExitCode != 255 || !strings.Contains(res.Stderr, "Host key verification failed") {
		t.Fatalf("other host key: exit %d, want 255 Host key verification failed", res.ExitCode)
	}
	log.WaitFor(t, hostKeyWarning, 1, e2eWait)
	var line string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, hostKeyWarning) {
			line = l
		}
	}
	fp := gossh.FingerprintSHA256(ts.hostKey.PublicKey())
	for _, want := range []string{"level=WARN", "remote=127.0.0.1:", `client="OpenSSH_`, `host_key="ssh-ed25519 ` + fp + `"`} {
		if !strings.Contains(line, want) {
			t.Errorf("warning %q lacks %q", line, want)
		}
	}
}

// FuzzKexWatch: whatever a client or a broken server sends, in whatever
// pieces, the watcher neither panics nor keeps more than its bounds.
func FuzzKexWatch(f *testing.F) {
	f.Add([]byte("SSH-2.0-OpenSSH_9.2\r\n\x00\x00\x00\x0c\x0a\x1e\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), []byte("SSH-2.0-TurkuStorage\r\n\x00\x00\x00\x10\x04\x1f\x00\x00\x00\x03abc\x00\x00\x00\x00\x00\x00"), 7)
	f.Add([]byte("junk\nSSH-2.0-x\n\xff\xff\xff\xff"), []byte{}, 1)
	f.Fuzz(func(t *testing.T, in, out []byte, cut int) {
		var w kexWatch
		if cut < 0 {
			cut = -cut
		}
		cut %= len(in) + 1
		w.wrote(out)
		w.read(in[:cut], nil, slog.New(slog.DiscardHandler))
		w.read(in[cut:], errTestEOF, slog.New(slog.DiscardHandler))
		if len(w.out.reply) > replyPrefix || len(w.in.line) > maxVersionLine {
			t.Fatalf("kept %d reply bytes, %d line bytes", len(w.out.reply), len(w.in.line))
		}
	})
}

var errTestEOF = io.EOF
