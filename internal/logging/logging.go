package logging

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// DefaultJournalSocket is systemd-journald's native protocol socket.
const DefaultJournalSocket = "/run/systemd/journal/socket"

// Options say where the default log goes and at what level.
type Options struct {
	Level slog.Level
	// Stderr receives the log when it is not the journal's, syslog's or
	// a file's.
	Stderr io.Writer
	// JournalStream is $JOURNAL_STREAM, which systemd sets when it
	// connects stderr to the journal.
	JournalStream string
	// JournalSocket replaces DefaultJournalSocket (tests).
	JournalSocket string
}

// Open builds the long-running logger from log_file: "systemd" (the
// journal, with priorities), "syslog", a file path (appended), or "" for
// the default: the journal when stderr is connected to it (serve under
// systemd), else stderr. It returns a close function.
func Open(logFile string, o Options) (*slog.Logger, func(), error) {
	level := o.Level
	opts := &slog.HandlerOptions{Level: level}
	socket := cmp.Or(o.JournalSocket, DefaultJournalSocket)
	switch logFile {
	case "":
		// Under systemd, stderr reaches the journal as plain lines: the
		// native protocol adds the priority and the MACHINE, UNIT,
		// SOURCE and SNAPSHOT fields that journalctl selects on.
		if stderrIsJournal(o.Stderr, o.JournalStream) {
			if l, closeLog, err := openJournal(socket, level); err == nil {
				return l, closeLog, nil
			}
		}
		return slog.New(slog.NewTextHandler(o.Stderr, opts)), func() {}, nil
	case "systemd":
		l, closeLog, err := openJournal(socket, level)
		if err != nil {
			// Not under systemd: stderr still reaches the journal when
			// the unit's stderr is the journal, and the operator sees it.
			l := slog.New(slog.NewTextHandler(o.Stderr, opts))
			l.Warn("log_file is systemd but the journal socket is unavailable; logging to stderr", "err", err)
			return l, func() {}, nil
		}
		return l, closeLog, nil
	case "syslog":
		w, err := syslog.New(syslog.LOG_INFO|syslog.LOG_DAEMON, "turku-storage")
		if err != nil {
			return nil, nil, fmt.Errorf("log_file syslog: %w", err)
		}
		return slog.New(&syslogHandler{level: level, w: w, attrs: nil, mu: &sync.Mutex{}}), func() { w.Close() }, nil
	default:
		f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log_file: %w", err)
		}
		return slog.New(slog.NewTextHandler(f, opts)), func() { f.Close() }, nil
	}
}

// openJournal connects a logger to journald's native socket at socket.
// It returns a close function.
func openJournal(socket string, level slog.Level) (*slog.Logger, func(), error) {
	conn, err := net.Dial("unixgram", socket)
	if err != nil {
		return nil, nil, err
	}
	h := &journalHandler{level: level, conn: conn, mu: &sync.Mutex{}}
	return slog.New(h), func() { conn.Close() }, nil
}

// formatAttrs renders the record's message and attributes as logfmt text
// without time and level (the journal and syslog add their own).
func formatAttrs(r slog.Record, pre []slog.Attr) string {
	var b bytes.Buffer
	h := slog.NewTextHandler(&b, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	_ = h.WithAttrs(pre).Handle(context.Background(), r)
	return strings.TrimSuffix(b.String(), "\n")
}

// journalHandler speaks journald's native protocol: one datagram per record
// with MESSAGE, PRIORITY and SYSLOG_IDENTIFIER.
type journalHandler struct {
	level slog.Level
	attrs []slog.Attr
	conn  net.Conn
	mu    *sync.Mutex
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	msg := formatAttrs(r, h.attrs)
	fmt.Fprintf(&b, "PRIORITY=%d\nSYSLOG_IDENTIFIER=turku-storage\n", priority(r.Level))
	// The text handler quotes newlines, so MESSAGE is always one line.
	fmt.Fprintf(&b, "MESSAGE=%s\n", msg)
	writeJournalFields(&b, h.attrs, r)
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.conn.Write(b.Bytes())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *journalHandler) WithGroup(string) slog.Handler { return h }

// syslogHandler writes records to the local syslog daemon.
type syslogHandler struct {
	level slog.Level
	attrs []slog.Attr
	w     *syslog.Writer
	mu    *sync.Mutex
}

func (h *syslogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *syslogHandler) Handle(_ context.Context, r slog.Record) error {
	msg := formatAttrs(r, h.attrs)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Err(msg)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(msg)
	case r.Level >= slog.LevelInfo:
		return h.w.Info(msg)
	default:
		return h.w.Debug(msg)
	}
}

func (h *syslogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *syslogHandler) WithGroup(string) slog.Handler { return h }

// priority maps slog levels to syslog priorities (RFC 5424 §6.2.1).
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// journalFields are the slog keys (STYLE: fixed field names) also sent as
// journal fields, so `journalctl MACHINE=<uuid>` finds a machine's lines.
var journalFields = map[string]string{
	"machine":  "MACHINE",
	"unit":     "UNIT",
	"source":   "SOURCE",
	"snapshot": "SNAPSHOT",
}

// writeJournalFields appends the journalFields found among the handler's
// and the record's attributes (the record's win), each once.
func writeJournalFields(b *bytes.Buffer, pre []slog.Attr, r slog.Record) {
	vals := map[string]string{}
	add := func(a slog.Attr) bool {
		if name, ok := journalFields[a.Key]; ok {
			vals[name] = a.Value.Resolve().String()
		}
		return true
	}
	for _, a := range pre {
		add(a)
	}
	r.Attrs(add)
	for _, name := range []string{"MACHINE", "UNIT", "SOURCE", "SNAPSHOT"} {
		v, ok := vals[name]
		if !ok {
			continue
		}
		if !strings.ContainsRune(v, '\n') {
			fmt.Fprintf(b, "%s=%s\n", name, v)
			continue
		}
		// A value with a newline: the name, a newline, its length as a
		// little-endian uint64, the value and a newline (systemd's
		// native journal protocol).
		b.WriteString(name + "\n")
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(v)))
		b.Write(n[:])
		b.WriteString(v + "\n")
	}
}

// stderrIsJournal reports whether w is the stream systemd connected to the
// journal: JOURNAL_STREAM holds that stream's device and inode
// ("DEV:INO", systemd.exec(5)), which must be w's, since a process may
// have redirected its stderr since.
func stderrIsJournal(w io.Writer, journalStream string) bool {
	f, ok := w.(*os.File)
	if !ok || journalStream == "" {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return journalStream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
