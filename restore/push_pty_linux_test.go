package restore

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

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

	push := func(t *testing.T, stdout, stderr io.Writer, terminal bool) (string, error) {
		dest := t.TempDir()
		d := agenttest.StartRsyncd(t, "127.0.0.1", []agenttest.Module{{Name: "turku-restore", Path: dest, User: "u", Password: "p", Writable: true}})
		p := Push{Rsync: "rsync", User: "u", Password: "p", Module: "turku-restore", Port: d.Port, Source: Source{Arg: snap + "/"},
			Stdout: stdout, Stderr: stderr, Terminal: terminal}
		_, err := p.Run(context.Background())
		return dest, err
	}

	t.Run("plain", func(t *testing.T) {
		var out, errOut agenttest.Output
		dest, err := push(t, &out, &errOut, false)
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
		term := agenttest.OpenTerminal(t)
		var out agenttest.Output
		_, err := push(t, &out, term.TTY, true)
		got := term.Screen()
		if err != nil {
			t.Fatalf("%v\n%s", err, got)
		}
		t.Logf("terminal: %q", got)
		// progressbar draws "restore 100% |█...█| 2.0 MiB at ..." with \r.
		// One unit system: IEC for the size and the rate alike.
		if !regexp.MustCompile(`100% \|█+\|`).MatchString(got) || bytes.Contains([]byte(got), []byte("progress: ")) ||
			!regexp.MustCompile(`iB at [\d.]+[KMG]iB/s`).MatchString(got) || regexp.MustCompile(`\d[kMG]B/s`).MatchString(got) {
			t.Errorf("no progress bar on the terminal:\n%q", got)
		}
	})
}
