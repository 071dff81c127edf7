package main

import (
	"testing"

	"github.com/turku-backup/turku-storage/monitor"
)

func TestCount(t *testing.T) {
	for _, tt := range []struct {
		n                int
		singular, plural string
		want             string
	}{
		{0, "machine", "", "0 machines"},
		{1, "machine", "", "1 machine"},
		{2, "machine", "", "2 machines"},
		{1, "machine directory", "machine directories", "1 machine directory"},
		{3, "machine directory", "machine directories", "3 machine directories"},
	} {
		if got := count(tt.n, tt.singular, tt.plural); got != tt.want {
			t.Errorf("count(%d, %q, %q) = %q, want %q", tt.n, tt.singular, tt.plural, got, tt.want)
		}
	}
}

// TestNotifyStatusPlurals: systemctl status says "1 machine", not "1
// machines".
func TestNotifyStatusPlurals(t *testing.T) {
	st := monitor.New(monitor.Options{SpooledReports: func() int { return 1 }})
	st.SetMachines(1)
	want := "STATUS=1 machine; 0 checkin and 0 restore sessions; 0 backups running, 0 waiting; 1 report spooled"
	if got := (notifier{state: st}).status(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
