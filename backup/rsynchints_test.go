package backup

import (
	"errors"
	"fmt"
	"testing"

	"github.com/turku-backup/turku-storage/rsync"
)

// TestFailureSummaryHints: rsync's cryptic complaints about the agent's
// side come with what they mean there; other failures are left as they
// are.
func TestFailureSummaryHints(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"chroot", &rsync.Error{Code: 5, Tail: []string{"@ERROR: chroot failed", "rsync error: error starting client-server protocol (code 5) at main.c(1863) [Receiver=3.2.7]"}},
			"rsync exited with return code 5\n@ERROR: chroot failed\nrsync error: error starting client-server protocol (code 5) at main.c(1863) [Receiver=3.2.7]\n" +
				"meaning: the source's path does not exist on the agent, or is not readable there (check its path in the agent's sources.d)\n"},
		{"auth", &rsync.Error{Code: 5, Tail: []string{"@ERROR: auth failed on module etc"}},
			"rsync exited with return code 5\n@ERROR: auth failed on module etc\n" +
				"meaning: the agent's rsync daemon refused the source's user name or password: the agent's configuration and the coordinator disagree (run turku-update-config on the agent)\n"},
		{"unknown module", &rsync.Error{Code: 5, Tail: []string{"@ERROR: Unknown module 'home'"}},
			"rsync exited with return code 5\n@ERROR: Unknown module 'home'\n" +
				"meaning: the agent's rsync daemon does not serve this source: it was removed or renamed in the agent's sources.d (run turku-update-config on the agent)\n"},
		{"refused", fmt.Errorf("source etc: %w", &rsync.Error{Code: 10, Tail: []string{"rsync: [Receiver] failed to connect to 127.0.0.1 (127.0.0.1): Connection refused (111)"}}),
			"source etc: rsync exited with return code 10\nrsync: [Receiver] failed to connect to 127.0.0.1 (127.0.0.1): Connection refused (111)\n" +
				"meaning: nothing listened at the agent's end of the tunnel: the agent's rsync daemon is not running (it stopped or failed to start; see the agent's log)\n"},
		{"plain rsync", &rsync.Error{Code: 23, Tail: []string{"rsync: [sender] send_files failed to open \"/etc/shadow\": Permission denied (13)"}},
			"rsync exited with return code 23\nrsync: [sender] send_files failed to open \"/etc/shadow\": Permission denied (13)\n"},
		{"not rsync", errors.New("Connection refused by the API"), "Connection refused by the API\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := failureSummary(tt.err); got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}
