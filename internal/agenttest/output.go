package agenttest

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Output collects what a process or logger writes, from any goroutine, and
// lets a test wait for a line to appear: the signal is the write itself.
type Output struct {
	mu      sync.Mutex // guards the fields below
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write and on Close
	closed  bool          // the writer is gone: nothing more will come
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.wake()
	return o.b.Write(p)
}

// Close records that nothing more will be written (the process exited),
// so that a wait for what never came fails at once. The agent's processes
// close their outputs themselves.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	o.wake()
	return nil
}

// wake tells the waiters that something changed; o.mu is held.
func (o *Output) wake() {
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Count returns how often s occurs so far.
func (o *Output) Count(s string) int { return strings.Count(o.String(), s) }

// WaitFor waits until s occurs at least n times, failing the test after
// timeout or once the output is closed without it.
func (o *Output) WaitFor(t testing.TB, s string, n int, timeout time.Duration) {
	t.Helper()
	o.wait(t, timeout, fmt.Sprintf("%q %d times", s, n), func(out string) bool {
		return strings.Count(out, s) >= n
	})
}

// WaitForLine waits for a complete line matching re and returns the
// submatches of the first one, failing the test after timeout or once the
// output is closed without one. re sees one line without its newline, so
// ^ and $ anchor at the line's ends.
func (o *Output) WaitForLine(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	var m []string
	o.wait(t, timeout, "a line matching "+re.String(), func(out string) bool {
		lines := strings.Split(out, "\n")
		for _, line := range lines[:len(lines)-1] { // the last one is not complete
			if m = re.FindStringSubmatch(line); m != nil {
				return true
			}
		}
		return false
	})
	return m
}

// Await waits until s occurs and returns an error after timeout or once
// the output is closed without it: WaitFor for bench/, which has no
// testing.TB.
func (o *Output) Await(s string, timeout time.Duration) error {
	return o.await(timeout, fmt.Sprintf("%q", s), func(out string) bool { return strings.Contains(out, s) })
}

// wait waits until done holds for everything written so far, failing the
// test if it does not.
func (o *Output) wait(t testing.TB, timeout time.Duration, what string, done func(out string) bool) {
	t.Helper()
	if err := o.await(timeout, what, done); err != nil {
		t.Fatalf("%v", err)
	}
}

// await waits until done holds for everything written so far.
func (o *Output) await(timeout time.Duration, what string, done func(out string) bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		out, closed := o.b.String(), o.closed
		if done(out) {
			o.mu.Unlock()
			return nil
		}
		if closed {
			o.mu.Unlock()
			return fmt.Errorf("output ended without %s:\n%s", what, out)
		}
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		ch := o.changed
		o.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return fmt.Errorf("no %s within %v; output so far:\n%s", what, timeout, o.String())
		}
	}
}
