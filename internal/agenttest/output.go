package agenttest

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Output collects what a process or logger writes, from any goroutine, and
// lets a test wait for a line to appear: the signal is the write itself.
type Output struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Count returns how often s occurs so far.
func (o *Output) Count(s string) int { return strings.Count(o.String(), s) }

// WaitFor waits until s occurs at least n times, failing the test after
// timeout.
func (o *Output) WaitFor(t testing.TB, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		if strings.Count(o.b.String(), s) >= n {
			o.mu.Unlock()
			return
		}
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		ch := o.changed
		o.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%q did not appear %d times within %v; output so far:\n%s", s, n, timeout, o.String())
		}
	}
}
