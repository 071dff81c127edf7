package sessionlog

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Logger writes agent-facing lines. It is safe for concurrent use; a write
// error (agent gone) is remembered and later lines are dropped.
type Logger struct {
	name    string
	verbose bool
	now     func() time.Time

	mu  sync.Mutex // guards w and err
	w   io.Writer
	err error
}

// New returns a Logger writing to w, tagging lines with the storage name.
// now may be nil (time.Now).
func New(w io.Writer, name string, verbose bool, now func() time.Time) *Logger {
	if now == nil {
		now = time.Now
	}
	return &Logger{w: w, name: name, verbose: verbose, now: now}
}

// Discard returns a Logger that writes nothing.
func Discard() *Logger { return New(io.Discard, "", false, nil) }

// Infof writes an INFO line when the agent asked for verbose output.
func (l *Logger) Infof(format string, args ...any) {
	if l.verbose {
		l.write("INFO", format, args)
	}
}

// Warningf writes a WARNING line when the agent asked for verbose output.
func (l *Logger) Warningf(format string, args ...any) {
	if l.verbose {
		l.write("WARNING", format, args)
	}
}

// Errorf always writes an ERROR line.
func (l *Logger) Errorf(format string, args ...any) {
	l.write("ERROR", format, args)
}

// Err reports the first write error, if any.
func (l *Logger) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *Logger) write(level, format string, args []any) {
	t := l.now()
	msg := fmt.Sprintf(format, args...)
	// One record is one line: never let data from the API or agent start a
	// line of its own that looks like ours.
	msg = strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(msg)
	line := fmt.Sprintf("[%s,%03d %s] %s: %s\n",
		t.Format("2006-01-02 15:04:05"), t.Nanosecond()/int(time.Millisecond), l.name, level, msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	_, l.err = io.WriteString(l.w, line)
}

// RestoreActive tells the agent its restore listens on port, in the old
// storage unit's words, which agents and their operators look for.
func (l *Logger) RestoreActive(port int) {
	l.Infof("Restore mode active on port %d.  Good luck.", port)
}

// RestoreFinished tells the agent its restore mode is over.
func (l *Logger) RestoreFinished() { l.Infof("Restore mode finished") }
