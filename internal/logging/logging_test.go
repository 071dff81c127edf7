package logging

import (
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestJournalHandler checks the journald native protocol datagrams.
func TestJournalHandler(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "journal.sock")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
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
