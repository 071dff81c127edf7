package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDaemonLoggerFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "storage.log")
	g := &globals{logLevel: "info"}
	log, closeLog, err := g.daemonLogger(path)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("session started", "machine", "u1")
	closeLog()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `msg="session started" machine=u1`) || strings.Contains(string(data), "hidden") {
		t.Errorf("log file: %q", data)
	}
	if _, _, err := g.daemonLogger(filepath.Join(t.TempDir(), "missing", "x.log")); err == nil || !strings.Contains(err.Error(), "log_file") {
		t.Errorf("unwritable log_file: got %v", err)
	}
	bad := &globals{logLevel: "loud"}
	if _, _, err := bad.daemonLogger(""); err == nil || !strings.Contains(err.Error(), `--log-level "loud"`) {
		t.Errorf("bad level: got %v", err)
	}
}

// TestDaemonLoggerDefault: without log_file, serve logs to the journal's
// native protocol when its stderr is the stream systemd connected to the
// journal (JOURNAL_STREAM names its device and inode), else to stderr.
func TestDaemonLoggerDefault(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "journal.sock")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(stderr.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	g := &globals{logLevel: "info", stderr: stderr, journalSocket: sock}

	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	log, closeLog, err := g.daemonLogger("")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("backup done", "machine", "u1", "source", "etc")
	closeLog()
	buf := make([]byte, 4096)
	n, err := srv.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); !strings.Contains(got, "\nMACHINE=u1\n") || !strings.Contains(got, "\nSOURCE=etc\n") {
		t.Errorf("journal datagram %q lacks the MACHINE and SOURCE fields", got)
	}

	// Another stream (stderr redirected since, or not under systemd):
	// plain text on stderr.
	for _, stream := range []string{fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), ""} {
		t.Setenv("JOURNAL_STREAM", stream)
		log, closeLog, err := g.daemonLogger("")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("on stderr", "stream", stream)
		closeLog()
	}
	data, err := os.ReadFile(stderr.Name())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(data), `msg="on stderr"`); got != 2 {
		t.Errorf("stderr has %d lines, want 2:\n%s", got, data)
	}
}
