package logging

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// listenJournal stands in for journald's socket.
func listenJournal(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "journal.sock")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return sock, srv
}

// TestJournalHandler checks the journald native protocol datagrams.
func TestJournalHandler(t *testing.T) {
	t.Parallel()
	sock, srv := listenJournal(t)
	conn, err := net.Dial("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	log := slog.New(&journalHandler{level: slog.LevelInfo, conn: conn, mu: &sync.Mutex{}}).With("machine", "u1")

	read := func() string {
		buf := make([]byte, 4096)
		n, err := srv.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	log.Warn("refresh failed", "err", "boom")
	got := read()
	for _, want := range []string{"PRIORITY=4\n", "SYSLOG_IDENTIFIER=turku-storage\n", `MESSAGE=msg="refresh failed" machine=u1 err=boom` + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("datagram %q lacks %q", got, want)
		}
	}
	log.Error("multi\nline")
	got = read()
	if !strings.Contains(got, "PRIORITY=3\n") || !strings.Contains(got, `MESSAGE=msg="multi\nline" machine=u1`+"\n") {
		t.Errorf("multi-line datagram %q: want one escaped MESSAGE line", got)
	}

	// Structured fields for journalctl MACHINE=… UNIT=… SOURCE=… SNAPSHOT=….
	log.With("unit", "web1").Info("backup done", "source", "etc", "snapshot", "etc_20261125-031500_ab12", "duration", "1s")
	got = read()
	for _, want := range []string{"\nMACHINE=u1\n", "\nUNIT=web1\n", "\nSOURCE=etc\n", "\nSNAPSHOT=etc_20261125-031500_ab12\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("datagram %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "DURATION=") {
		t.Errorf("datagram %q has a field that is not one of ours", got)
	}
	// A newline in a value takes the length-prefixed form.
	log.Info("odd", "source", "a\nb")
	got = read()
	if want := "SOURCE\n\x03\x00\x00\x00\x00\x00\x00\x00a\nb\n"; !strings.Contains(got, want) {
		t.Errorf("datagram %q lacks %q", got, want)
	}
}

// TestOpenDefault: without log_file, serve logs to the journal's
// native protocol when its stderr is the stream systemd connected to the
// journal (JOURNAL_STREAM names its device and inode), else to stderr.
func TestOpenDefault(t *testing.T) {
	dir := t.TempDir()
	sock, srv := listenJournal(t)
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(stderr.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	opts := Options{Level: slog.LevelInfo, Stderr: stderr, JournalSocket: sock, JournalStream: fmt.Sprintf("%d:%d", st.Dev, st.Ino)}
	log, closeLog, err := Open("", opts)
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
		opts.JournalStream = stream
		log, closeLog, err := Open("", opts)
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
