package rsync

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

const (
	// tailLines is how much of rsync's output an Error keeps.
	tailLines = 20
	// maxLineLen truncates single output lines (a long file name) in logs
	// and summaries.
	maxLineLen = 1000
	// maxPartial is the longest line held back waiting for its end; a
	// longer one is handed on in pieces.
	maxPartial = 64 << 10
)

// lineWriter is an io.Writer that hands each line written to it to line,
// without its end. A line ends at "\n", and also at "\r" when cr is set
// (--info=progress2 redraws its line with "\r"). The caller serialises
// Write and flush.
type lineWriter struct {
	line    func(string)
	cr      bool
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	ends := "\n"
	if w.cr {
		ends = "\r\n"
	}
	for len(p) > 0 {
		i := bytes.IndexAny(p, ends)
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) > maxPartial {
				w.line(string(w.partial))
				w.partial = w.partial[:0]
			}
			break
		}
		w.line(string(append(w.partial, p[:i]...)))
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush hands on what is left after the last line end.
func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
}

// tail keeps the last tailLines lines given to it, cleaned for logs and
// summaries.
type tail struct {
	mu    sync.Mutex // guards lines and w
	lines []string
	w     lineWriter
}

// cleanLine trims a line's "\r", truncates it to maxLineLen and makes it
// valid UTF-8.
func cleanLine(s string) string {
	s = strings.TrimRight(s, "\r")
	if len(s) > maxLineLen {
		s = s[:maxLineLen] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func (t *tail) add(s string) {
	t.lines = append(t.lines, s)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

// Write takes raw output (an io.Writer for stderr).
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w.line == nil {
		t.w.line = func(s string) { t.add(cleanLine(s)) }
	}
	return t.w.Write(p)
}

func (t *tail) get() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w.flush()
	return append([]string(nil), t.lines...)
}

// Output reads a pull's output (--verbose --stats, stdout and stderr
// alike): it logs each line at debug level, counts the file lines, keeps
// the last lines for an Error and reads the --stats block.
type Output struct {
	log   *slog.Logger
	files atomic.Int64
	mu    sync.Mutex // guards w, last, inStats and stats
	w     lineWriter
	last  tail
	// inStats is set from the block's first line ("Number of files: ")
	// on: what follows is figures, not file names.
	inStats bool
	stats   TransferStats
}

// NewOutput returns an Output that logs to log.
func NewOutput(log *slog.Logger) *Output {
	o := &Output{log: log}
	o.w.line = o.line
	return o
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(p)
}

func (o *Output) line(s string) {
	s = cleanLine(s)
	o.log.Debug("rsync", "line", s)
	if strings.HasPrefix(s, "Number of files: ") {
		o.inStats = true
	}
	if o.inStats {
		parseStatsLine(s, &o.stats)
	} else if isFileLine(s) {
		o.files.Add(1)
	}
	o.last.add(s)
}

// Flush reads what is left after the last line end; call it once rsync
// has exited.
func (o *Output) Flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.w.flush()
}

// Files returns the number of file lines so far: the files rsync has
// transferred. It may be called while rsync runs.
func (o *Output) Files() int64 { return o.files.Load() }

// Stats returns the figures of the --stats block (zero where rsync
// printed none).
func (o *Output) Stats() TransferStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats
}

// Tail returns the last lines.
func (o *Output) Tail() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.last.lines...)
}

// isFileLine reports whether a line of rsync --verbose output (without
// --itemize-changes) names a file it transferred: not a directory (ends in
// "/"), not a deletion, not a warning, not the header or the closing
// totals. Symlinks ("a -> b") and hard links ("a => b") count.
func isFileLine(s string) bool {
	switch {
	case s == "", strings.HasSuffix(s, "/"),
		s == "receiving incremental file list", s == "receiving file list ... done",
		s == "sending incremental file list", s == "created directory" || strings.HasPrefix(s, "created directory "),
		strings.HasPrefix(s, "deleting "), strings.HasPrefix(s, "sent "), strings.HasPrefix(s, "total size is "),
		strings.HasPrefix(s, "rsync: "), strings.HasPrefix(s, "rsync error: "), strings.HasPrefix(s, "@ERROR"),
		strings.HasPrefix(s, "skipping "), strings.HasPrefix(s, "file has vanished: "),
		strings.HasPrefix(s, "cannot delete "), strings.HasPrefix(s, "IO error "),
		strings.HasPrefix(s, "WARNING: "), strings.HasPrefix(s, "Number of "):
		return false
	}
	return true
}
