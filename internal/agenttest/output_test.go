package agenttest

import (
	"fmt"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fatalTB records the first Fatalf and ends the goroutine, as t.Fatalf does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitForLine(t *testing.T) {
	re := regexp.MustCompile(`^port (\d+)$`)
	for _, tc := range []struct {
		name      string
		before    []string // written before the wait
		during    []string // written while it waits
		close     bool     // then the writer goes away
		want      []string
		wantFatal bool
	}{
		{name: "complete line", before: []string{"hello\nport 12\nbye\n"}, want: []string{"port 12", "12"}},
		{name: "first of two", before: []string{"port 1\nport 2\n"}, want: []string{"port 1", "1"}},
		{name: "line completed later", before: []string{"port 1"}, during: []string{"3", "\n"}, want: []string{"port 13", "13"}},
		{name: "partial line at close", before: []string{"port 12"}, close: true, wantFatal: true},
		{name: "closed without it", before: []string{"port x\n"}, during: []string{"nope\n"}, close: true, wantFatal: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o Output
			for _, s := range tc.before {
				o.Write([]byte(s))
			}
			tb := &fatalTB{TB: t}
			var got []string
			done := make(chan struct{})
			go func() {
				defer close(done)
				got = o.WaitForLine(tb, re, time.Minute)
			}()
			for _, s := range tc.during {
				o.Write([]byte(s))
			}
			if tc.close {
				o.Close()
			}
			<-done
			if gotFatal := tb.msg != ""; gotFatal != tc.wantFatal {
				t.Fatalf("failed: %v (%q), want %v", gotFatal, tb.msg, tc.wantFatal)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("submatches (-want +got):\n%s", diff)
			}
		})
	}
}
