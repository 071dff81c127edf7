package daemon

import (
	"testing"

	"github.com/turku-backup/turku-storage/monitor"
)

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
