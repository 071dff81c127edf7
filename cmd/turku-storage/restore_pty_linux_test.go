package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/restore"
)

// openPTY returns a pseudo-terminal pair (/dev/ptmx, pts(4)).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// TestRestoreProgress pushes to a writable module of a real rsync daemon
// (the agent's side of a restore) and shows progress as a bar on a
// terminal and as plain lines otherwise.
func TestRestoreProgress(t *testing.T) {
	if _, err := os.Stat("/usr/bin/rsync"); err != nil {
		t.Skip("rsync not installed")
	}
	snap := t.TempDir()
	big := make([]byte, 2<<20)
	rand.Read(big)
	agenttest.WriteTree(t, snap, map[string]string{"big.bin": string(big), "etc/hosts": "127.0.0.1 localhost\n"})

	push := func(t *testing.T, stdout, stderr io.Writer) (string, error) {
		dest := t.TempDir()
		d := agenttest.StartRsyncd(t, "127.0.0.1", []agenttest.Module{{Name: "turku-restore", Path: dest, User: "u", Password: "p", Writable: true}})
		r := &restoreRun{g: &globals{stdout: stdout, stderr: stderr}, rsync: "rsync", user: "u", password: "p",
			module: "turku-restore", port: d.Port, src: restore.Source{Arg: snap + "/"}}
		return dest, r.run(context.Background())
	}

	t.Run("plain", func(t *testing.T) {
		var out, errOut syncWriter
		dest, err := push(t, &out, &errOut)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut.String())
		}
		if got, _ := os.ReadFile(filepath.Join(dest, "big.bin")); !bytes.Equal(got, big) {
			t.Error("big.bin differs")
		}
		if !regexp.MustCompile(`(?m)^progress: 100% \d+ bytes [\d.]+[KMG]iB/s$`).MatchString(errOut.String()) || !regexp.MustCompile(`Restored: \d+ bytes sent\.`).MatchString(errOut.String()) {
			t.Errorf("no plain progress lines:\n%s", errOut.String())
		}
	})

	t.Run("terminal", func(t *testing.T) {
		master, tty := openPTY(t)
		var screen syncWriter
		copied := make(chan struct{})
		go func() {
			defer close(copied)
			io.Copy(&screen, master) // ends with EIO once the slave is closed
		}()
		var out syncWriter
		_, err := push(t, &out, tty)
		tty.Close()
		<-copied
		if err != nil {
			t.Fatalf("%v\n%s", err, screen.String())
		}
		got := screen.String()
		t.Logf("terminal: %q", got)
		// progressbar draws "restore 100% |█...█| 2.0 MiB at ..." with \r.
		// One unit system: IEC for the size and the rate alike.
		if !regexp.MustCompile(`100% \|█+\|`).MatchString(got) || bytes.Contains([]byte(got), []byte("progress: ")) ||
			!regexp.MustCompile(`iB at [\d.]+[KMG]iB/s`).MatchString(got) || regexp.MustCompile(`\d[kMG]B/s`).MatchString(got) {
			t.Errorf("no progress bar on the terminal:\n%q", got)
		}
	})
}
